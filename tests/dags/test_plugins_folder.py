"""Airflow's plugin loader must not execute the tracking_sync package a second time.

The loader (airflow/_shared/plugins_manager/plugins_manager.py, _load_plugins_from_plugin_directory)
imports every .py file under plugins/ as a top-level module named after the file, unless
plugins/.airflowignore excludes it. Without the ignore file, tasks/publish.py would run again as `publish`,
errors.py as `errors`, settings.py as `settings`..., each with its own copy of every class.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"

LOAD_PLUGINS = """
import json, sys
from airflow import plugins_manager
before = set(sys.modules)
plugins_manager.ensure_plugins_loaded()
print(json.dumps({"new": sorted(set(sys.modules) - before), "errors": plugins_manager.get_import_errors()}))
"""


def _stems() -> set[str]:
    return {path.stem for path in (PLUGINS / "tracking_sync").rglob("*.py")}


def _load_plugins(plugins_folder: Path, tmp_path: Path) -> dict:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(PLUGINS)]),
    }
    out = subprocess.run(
        [sys.executable, "-c", LOAD_PLUGINS], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_plugin_loader_runs_no_module_of_the_package_under_a_second_name(tmp_path):
    loaded = _load_plugins(PLUGINS, tmp_path)
    second_names = sorted(set(loaded["new"]) & _stems())
    assert second_names == [], f"the plugin loader executed {second_names} as top-level modules"
    assert not any(name.split(".")[0] in _stems() for name in loaded["new"])
    assert loaded["errors"] == {}


def test_without_the_ignore_file_the_loader_would_run_them(tmp_path):
    """The check above can fail: the same loader on a copy without plugins/.airflowignore."""
    copy = tmp_path / "plugins"
    shutil.copytree(PLUGINS, copy, ignore=shutil.ignore_patterns(".airflowignore", "__pycache__"))
    loaded = _load_plugins(copy, tmp_path)
    assert {"errors", "settings", "plan", "publish"} <= set(loaded["new"])

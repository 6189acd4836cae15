"""The house style, checked: ruff's lint rules (Airflow's AIR rules included) and formatter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RUFF = [sys.executable, "-m", "ruff"]


def test_ruff_lint_passes():
    result = subprocess.run(
        [*RUFF, "check", "--output-format", "concise", "."], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, f"ruff check found problems (fix: ruff check --fix .):\n{result.stdout}"


def test_ruff_format_is_clean():
    result = subprocess.run([*RUFF, "format", "--check", "."], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"files need formatting (fix: ruff format .):\n{result.stdout}"


def test_compose_file_follows_the_compose_specification():
    # The schema ships inside check-jsonschema: no network, no Docker engine (0.5 s).
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            "docker-compose.yaml",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"docker-compose.yaml breaks the Compose Specification:\n{result.stdout}"

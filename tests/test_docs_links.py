"""The docs: README.md and docs/*.md point only at what exists, the README stays a five-minute
read, and the runbook the Airflow UI shows is docs/runbook.md, read by Airflow, not by our code.

Checked in every doc (one test id per file):
- every relative Markdown link `[text](path#anchor)` names an existing file or folder, and an
  anchor names a heading of the target (GitHub's slugs);
- every repository path written as code (`tests/e2e/test_oncall.py`, `include/sql/parity/*.sql`)
  exists: the docs name files that way far more often than they link them.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from tracking_sync.core.names import DAG_ID

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
DOCS_DIR = REPO_ROOT / "docs"
RUNBOOK = DOCS_DIR / "runbook.md"
DAG_FILE = REPO_ROOT / "dags" / "postgres_to_redshift.py"
README_MAX_LINES = 220

DOC_FILES = [README, *sorted(DOCS_DIR.glob("*.md"))]
DOC_IDS = [str(p.relative_to(REPO_ROOT)) for p in DOC_FILES]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
# A code span that starts with one of the repository's folders, or is a file at its top.
REPO_PATH = re.compile(
    r"^(?:(?:dags|plugins|include|docs|devstack|docker|bench|tests|\.ci)/[^\s`]*"
    r"|[A-Za-z][\w.-]*\.(?:yaml|txt|ini|toml|example))(?=\s|$)"
)
PLACEHOLDER = re.compile(r"[<>{}$…]|\.\.\.")


def prose(markdown: str) -> str:
    """The text outside fenced code blocks (a diagram or a shell session is not a link)."""
    return FENCE.sub("", markdown)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__", "", heading.strip()).lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(markdown_file: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in prose(markdown_file.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = github_slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def dead_links(doc: Path, root: Path = REPO_ROOT) -> list[str]:
    """Relative links of `doc` whose file, or whose anchor in that file, does not exist."""
    dead = []
    for target in LINK.findall(prose(doc.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (doc.parent / path_part).resolve() if path_part else doc
        if not resolved.exists():
            shown = resolved.relative_to(root) if resolved.is_relative_to(root) else resolved
            dead.append(f"{target}: no {shown}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            dead.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return dead


def missing_paths(doc: Path, root: Path = REPO_ROOT) -> list[str]:
    """Repository paths written as code in `doc` that do not exist (a glob must match)."""
    missing = []
    for span in CODE_SPAN.findall(prose(doc.read_text(encoding="utf-8"))):
        match = REPO_PATH.match(span.strip())
        if not match or PLACEHOLDER.search(match.group()):
            continue
        path = match.group().rstrip(".,;:")
        found = any(root.glob(path)) if "*" in path else (root / path).exists()
        if not found:
            missing.append(path)
    return missing


@pytest.mark.parametrize("doc", DOC_FILES, ids=DOC_IDS)
def test_relative_links_resolve(doc):
    dead = dead_links(doc)
    assert not dead, f"{doc.relative_to(REPO_ROOT)} links to what does not exist: {dead}"


@pytest.mark.parametrize("doc", DOC_FILES, ids=DOC_IDS)
def test_repository_paths_named_in_code_exist(doc):
    missing = missing_paths(doc)
    assert not missing, f"{doc.relative_to(REPO_ROOT)} names paths that do not exist: {missing}"


def test_the_checks_find_a_dead_link_a_dead_anchor_and_a_missing_path(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# Here it is\n", encoding="utf-8")
    doc = tmp_path / "README.md"
    doc.write_text(
        "[ok](docs/there.md#here-it-is) [gone](docs/gone.md) [bad anchor](docs/there.md#nowhere)\n"
        "[web](https://example.com/x.md) `tests/nothing_here.py` `dags/` `tests/<name>.py`\n"
        "```\n[in a code block](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    (tmp_path / "dags").mkdir()
    assert dead_links(doc, tmp_path) == [
        "docs/gone.md: no docs/gone.md",
        "docs/there.md#nowhere: no heading #nowhere in there.md",
    ]
    assert missing_paths(doc, tmp_path) == ["tests/nothing_here.py"]


def test_github_slugs():
    assert github_slug("When `validate` fails") == "when-validate-fails"
    assert github_slug("On Celery workers (CeleryExecutor)") == "on-celery-workers-celeryexecutor"
    assert github_slug("The stand-in's COPY") == "the-stand-ins-copy"
    assert github_slug("postgres_to_redshift — on-call runbook") == "postgres_to_redshift--on-call-runbook"


def test_the_readme_is_a_five_minute_read():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): move reference material to docs/"
    )


def test_every_doc_is_linked_from_the_readme():
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for target in LINK.findall(prose(README.read_text(encoding="utf-8")))
    }
    orphans = [p.name for p in DOC_FILES[1:] if p.resolve() not in linked]
    assert orphans == [], f"docs not linked from README.md's Docs list: {orphans}"


# --- the runbook is the DAG's docs ---------------------------------------------------------

# What the browser test (tests/ui/test_airflow_ui.py) looks for in the UI's "Dag Docs" dialog.
UI_HEADINGS = ("Tasks, in order", "When `validate` fails", "First run of a new deployment")
UI_TEXT = (f"airflow backfill create --dag-id {DAG_ID}", "TRACKING_SYNC FAILED")


@pytest.fixture(scope="module")
def parsed_dag():
    """The DAG as the DAG processor parses it (through DagBag, from the DAG file)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[DAG_ID]


def test_the_dag_docs_are_the_runbook(parsed_dag):
    assert parsed_dag.doc_md == RUNBOOK.read_text(encoding="utf-8"), (
        "doc_md must be docs/runbook.md's text (a doc_md that is a path Airflow did not find stays the path)"
    )


def test_the_api_serves_the_runbook_as_the_dag_docs(parsed_dag):
    """Through the path the UI's "Dag Docs" take: the DAG processor serializes the DAG (JSON in
    the metadata DB), the API server deserializes it and its response model cleans doc_md."""
    from airflow.api_fastapi.core_api.datamodels.dags import DAGDetailsResponse
    from airflow.serialization.serialized_objects import DagSerialization

    stored = json.loads(json.dumps(DagSerialization.to_dict(parsed_dag)))
    served = DAGDetailsResponse.get_doc_md(DagSerialization.from_dict(stored).doc_md)
    runbook = RUNBOOK.read_text(encoding="utf-8")
    assert served == inspect.cleandoc(runbook)
    assert served.startswith(f"# {DAG_ID}"), "the dialog's first heading names the DAG"
    for heading in UI_HEADINGS:
        assert re.search(rf"^##+ {re.escape(heading)}$", served, re.M), f"heading {heading!r}"
    for text in UI_TEXT:
        assert text in served, text


# Run in a fresh interpreter, as the DAG processor parses a file: every module the DAG file
# imports runs its top level here. An audit hook sees every file opened; an open is ours when
# the nearest frame that is neither the standard library nor an import is in dags/ or plugins/.
PARSE_PROBE = """
import json, sys
from pathlib import Path

repo = Path(sys.argv[1]); ours = (str(repo / "dags"), str(repo / "plugins")); opened = []

def hook(event, args):
    if event != "open" or not recording:
        return
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith("<frozen importlib"):
            return
        if name.startswith(ours) or "site-packages" in name:
            opened.append([str(args[0]), name])
            return
        frame = frame.f_back

recording = False
sys.addaudithook(hook)
from airflow.dag_processing.dagbag import DagBag
recording = True
bag = DagBag(dag_folder=sys.argv[2])
recording = False
assert not bag.import_errors, bag.import_errors
print(json.dumps(opened))
"""


def test_our_code_opens_no_file_when_the_dag_is_parsed():
    """Airflow reads the runbook (doc_md given as a path); the DAG file and the pipeline's
    modules open nothing at parse time."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "plugins")])}
    out = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(REPO_ROOT), str(DAG_FILE)],
        env=env,
        cwd=REPO_ROOT.parent,  # not the repository: the doc_md path must not depend on it
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[-1]
    opened = json.loads(out)
    ours = [(path, by) for path, by in opened if "site-packages" not in by]
    assert ours == [], f"files opened by our code while the DAG file was parsed: {ours}"
    readers = [by for path, by in opened if Path(path) == RUNBOOK]
    airflow_dag = str(Path("airflow", "sdk", "definitions", "dag.py"))
    assert readers and all(by.endswith(airflow_dag) for by in readers), (
        f"docs/runbook.md must be read by Airflow's DAG (doc_md given as a path), not: {readers}"
    )

"""Render the project's SQL files (include/sql/...) outside Airflow's templating.

Only identifiers that come from tracking_sync.core.tables or were validated by
tracking_sync.core.params are rendered into SQL; values are bound by the driver.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import sqlparse

# The project's SQL, next to plugins/ (include/sql/postgres, include/sql/redshift).
SQL_DIR = Path(__file__).resolve().parents[3] / "include" / "sql"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(SQL_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # SQL, not HTML
    )


def render_sql(relative_path: str, **context: Any) -> str:
    """Render include/sql/<relative_path> with the given context, without its -- comment lines.

    The header comments document the file; dropping them keeps placeholders they
    mention (%(start)s) away from the driver.
    """
    sql = _environment().get_template(relative_path).render(**context)
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def render_statements(relative_path: str, **context: Any) -> list[str]:
    """render_sql, split into statements (no trailing semicolons, no comment-only pieces)."""
    return [
        statement.strip().rstrip(";")
        for statement in sqlparse.split(render_sql(relative_path, **context))
        if statement.strip()
    ]

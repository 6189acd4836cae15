"""The tables the pipeline moves: THE one source of truth for their columns and types.

The export SELECT (include/sql/postgres/export_table.sql), the Redshift DDL
(include/sql/redshift/create_target_tables.sql), the COPY column list and the
publish INSERT are all rendered from these definitions, so a column is added
here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

# The NULL AS marker of the files (\\N), spelled without a backslash in SQL: backslashes
# in string literals are read differently by Redshift and PostgreSQL.
NULL_MARKER_SQL = "chr(92) || 'N'"


@dataclass(frozen=True)
class Column:
    name: str
    redshift_type: str
    nullable: bool = False
    # SQL run on the source to produce the exported text, when the bare column will not do.
    export_expression: str | None = None

    @property
    def select_expression(self) -> str:
        if self.export_expression is None:
            return self.name
        return f"{self.export_expression} as {self.name}"

    @property
    def is_text(self) -> bool:
        return self.redshift_type.lower().startswith(("varchar", "char"))

    @property
    def travels_with_null_flag(self) -> bool:
        """A nullable text column crosses the files as its text plus a <name>_is_marker flag.

        The files write NULL as the NULL AS marker \\N, unquoted, and every text quoted
        (so '' is "" and loads as ''). But Redshift's COPY compares a field with the NULL
        AS string after removing CSV quotes (the stand-in does too), so a text that is
        literally \\N loads as NULL as well; no marker is safe for free text (NULL AS
        '\\0' would be, but PostgreSQL cannot write a NUL byte). The flag says which
        NULLs were that text: the publish turns them back into it. Every other value
        loads as it is, so the staging table of a full refresh is the target's rows as
        they will stay, swapped in without a second write (tracking_sync.load.publish).
        """
        return self.nullable and self.is_text


def marker_flag(name: str) -> str:
    """The flag column that travels with nullable text column `name` (Column.travels_with_null_flag)."""
    return f"{name}_is_marker"


@dataclass(frozen=True)
class FileColumn:
    """A column of the exported files (and of the staging table that COPY loads them into)."""

    name: str
    redshift_type: str
    nullable: bool
    select_expression: str


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    # Redshift table attributes (distribution and sort), written after the column list.
    table_attributes: str
    # The column an incremental run selects on: rows with it in [interval start, end).
    # None: the table is small and always moved whole.
    time_column: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def text_columns(self) -> list[str]:
        return [column.name for column in self.columns if column.is_text]

    @property
    def is_incremental(self) -> bool:
        return self.time_column is not None

    @property
    def file_columns(self) -> list[FileColumn]:
        """The columns of the exported CSV, in order: the table's, plus the null flags."""
        out = []
        for column in self.columns:
            if column.travels_with_null_flag:
                out.append(FileColumn(column.name, column.redshift_type, True, column.select_expression))
                out.append(
                    FileColumn(
                        marker_flag(column.name),
                        "boolean",
                        False,
                        # false for NULL too: the flag itself is never NULL
                        f"coalesce({column.export_expression or column.name} = {NULL_MARKER_SQL}, false)"
                        f" as {marker_flag(column.name)}",
                    )
                )
            else:
                out.append(
                    FileColumn(
                        column.name,
                        column.redshift_type,
                        column.nullable,
                        column.select_expression,
                    )
                )
        return out

    @property
    def publish_expressions(self) -> list[str]:
        """SELECT expressions over the staging table that give the table's columns."""
        return [
            f"case when {marker_flag(c.name)} then {NULL_MARKER_SQL} else {c.name} end"
            if c.travels_with_null_flag
            else c.name
            for c in self.columns
        ]


ACTION_TYPE = Table(
    name="action_type",
    columns=(
        Column("id", "integer"),
        # Redshift VARCHAR(n) counts bytes, PostgreSQL counts characters: varchar(100) in the
        # source can hold 100 four-byte characters, so the target needs 400 bytes.
        Column("code", "varchar(400)"),
        Column("name", "varchar(400)"),
        Column("is_async", "boolean"),
    ),
    # Ten rows joined to every action: a copy on every node saves redistributing action.
    table_attributes="diststyle all",
)

ACTION = Table(
    name="action",
    columns=(
        Column("id", "integer"),
        Column("user_profile_id", "integer"),
        Column("session_id", "varchar(400)"),  # 100 characters of up to 4 bytes, see above
        Column("action_type_id", "integer"),
        # TIMESTAMPTZ, not TIMESTAMP: Redshift's EXTRACT(EPOCH FROM timestamp) returns an
        # INTEGER and drops the fraction (per-user session totals came out as whole seconds);
        # from TIMESTAMPTZ it returns DOUBLE PRECISION, as PostgreSQL does. The source column
        # is timestamp without time zone holding UTC, so the export says so explicitly and
        # writes the offset (+00), which COPY reads into TIMESTAMPTZ as the same instant.
        Column(
            "action_time",
            "timestamptz",
            export_expression="action_time at time zone 'UTC'",
        ),
        Column("course_id", "integer", nullable=True),
        Column("exercise_id", "integer", nullable=True),
        Column("is_exercise_checked", "boolean", nullable=True),
        Column("is_async", "boolean"),
        # VARCHAR(65535), the maximum: Redshift VARCHAR counts bytes and TEXT would silently
        # become VARCHAR(256); learners paste long queries with multi-byte text, which a
        # VARCHAR(5000) rejects (or, with TRUNCATECOLUMNS, cuts without a word).
        Column("query", "varchar(65535)", nullable=True),
    ),
    # DISTKEY(user_profile_id): the analytics (per-user totals, sessions) group by user, so
    # each user's rows sit on one slice and aggregate without redistribution.
    # SORTKEY(action_time): incremental loads delete and insert one time window, and analysts
    # filter on time; zone maps then skip every block outside the window.
    table_attributes="distkey (user_profile_id) sortkey (action_time)",
    time_column="action_time",
)

TABLES: dict[str, Table] = {table.name: table for table in (ACTION_TYPE, ACTION)}


def get_table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}: the pipeline moves {sorted(TABLES)}") from None

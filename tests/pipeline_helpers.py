"""Shared helpers of the pipeline tests: tricky source rows and row-for-row comparison."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

ACTION_COLUMNS = (
    "id, user_profile_id, session_id, action_type_id, action_time, course_id, "
    "exercise_id, is_exercise_checked, is_async, query"
)

LONG_MULTIBYTE_QUERY = "日" * 20_000  # 20,000 characters, 60,000 bytes: fits VARCHAR(65535)


def tricky_actions(first_id: int = 1, day: str = "2025-03-01") -> list[tuple]:
    """Rows whose values break naive CSV, NULL handling, byte-length types or timestamps."""
    queries = [
        "select 'it''s', \"quoted\" from t where a = 1, b = 2",
        "line one\nline two\r\nline three",
        "back\\slash \\ and \\\\ double",
        "\\N",  # the literal text of the NULL marker must stay text
        "",  # empty string, not NULL
        None,
        "NULL",
        "ünïcödé 日本語 😀 ñ",
        LONG_MULTIBYTE_QUERY,
        '"',
        ",",
        " ",
        '"\\N"',
    ]
    rows = []
    for offset, query in enumerate(queries):
        rows.append(
            (
                first_id + offset,
                1000 + offset % 3,
                f'sess,"{offset}"',
                8,
                datetime.fromisoformat(f"{day} 12:00:00.{offset:06d}"),
                None if offset % 2 else 7,
                None if offset % 3 else 70,
                None if offset % 4 == 0 else bool(offset % 2),
                bool(offset % 2),
                query,
            )
        )
    # A session crossing midnight, with microsecond timestamps on both sides.
    midnight = datetime.fromisoformat(day) + timedelta(days=1)
    for i, shift in enumerate((-1.000001, -0.999999, 0.000001)):
        moment = midnight + timedelta(seconds=shift)
        rows.append(
            (first_id + len(queries) + i, 2000, "midnight-session", 6, moment, 1, None, None, False, None)
        )
    return rows


def insert_actions(connection: Any, rows: list[tuple]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            f"insert into action ({ACTION_COLUMNS}) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    connection.commit()


def fetch_rows(connection: Any, sql: str, params: Any = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    connection.commit()
    return rows


def assert_same_rows(source: list[tuple], target: list[tuple], what: str = "rows") -> None:
    """Row-for-row equality with a readable first difference (None and '' are different)."""
    assert len(source) == len(target), f"{what}: {len(source)} in source, {len(target)} in target"
    for expected, actual in zip(source, target, strict=True):
        if tuple(expected) != tuple(actual):
            diffs = [
                f"column {i}: source {e!r:.120} != target {a!r:.120}"
                for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                if e != a
            ]
            raise AssertionError(f"{what} differ at id {expected[0]}: " + "; ".join(diffs))


def target_rows(connection: Any, schema: str = "tracking", where: str = "true") -> list[tuple]:
    """The target's action rows, with action_time (TIMESTAMPTZ) as the source stores it."""
    rows = fetch_rows(connection, f"select {ACTION_COLUMNS} from {schema}.action where {where} order by id")
    return [row[:4] + (_naive_utc(row[4]),) + row[5:] for row in rows]


def source_rows(connection: Any, where: str = "true") -> list[tuple]:
    return fetch_rows(connection, f"select {ACTION_COLUMNS} from action where {where} order by id")


def _naive_utc(moment: datetime) -> datetime:
    from datetime import UTC

    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def change_source_within(source, start: datetime) -> None:
    """A late correction inside one day: a row deleted, one updated, one inserted (at 23:59,
    into an existing session of that day)."""
    lo, hi = start.replace(tzinfo=None), (start + timedelta(days=1)).replace(tzinfo=None)
    with source.cursor() as cursor:
        cursor.execute(
            "delete from action where id = (select min(id) from action "
            "where action_time >= %s and action_time < %s)",
            (lo, hi),
        )
        cursor.execute(
            "update action set query = 'corrected, \"late\"', course_id = null where id = (select max(id) "
            "from action where action_time >= %s and action_time < %s)",
            (lo, hi),
        )
        cursor.execute(
            "select user_profile_id, session_id from action where action_time >= %s and action_time < %s "
            "order by id limit 1",
            (lo, hi),
        )
        user, session = cursor.fetchone()
        cursor.execute("select max(id) from action")
        (max_id,) = cursor.fetchone()
    source.commit()
    insert_actions(
        source,
        [(max_id + 1, user, session, 8, lo + timedelta(hours=23, minutes=59), 3, None, None, True, "")],
    )

"""export_table against the real source PostgreSQL: dialect, slicing, bounded parts."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import zstandard

from tests.pipeline_helpers import (
    ACTION_COLUMNS,
    assert_same_rows,
    fetch_rows,
    insert_actions,
    tricky_actions,
)
from tracking_sync.core.plan import RunSlice
from tracking_sync.core.tables import ACTION, ACTION_TYPE
from tracking_sync.extract.export import export_table

FULL = RunSlice(full_refresh=True)


def read_part(path) -> bytes:
    with open(path, "rb") as compressed:
        return zstandard.ZstdDecompressor().stream_reader(compressed).read()


def test_tricky_values_survive_a_csv_round_trip(source, tmp_path):
    """Read the parts back with COPY ... (FORMAT csv, NULL '\\N'): same rows, NULL vs '' kept."""
    insert_actions(source, tricky_actions())
    result = export_table(source, ACTION, FULL, tmp_path, part_bytes=1 << 30)
    assert result.rows == len(tricky_actions())

    with source.cursor() as cursor:
        cursor.execute("create temp table action_back (like action)")
        cursor.execute("alter table action_back add column query_is_marker boolean")
        for part in result.parts:
            cursor.copy_expert(
                "copy action_back from stdin with (format csv, null '\\N')",
                io.BytesIO(read_part(tmp_path / part.name)),
            )
    columns = ACTION_COLUMNS.replace("query", "case when query_is_marker then chr(92) || 'N' else query end")
    back = fetch_rows(source, f"select {columns} from action_back order by id")
    original = fetch_rows(source, f"select {ACTION_COLUMNS} from action order by id")
    assert_same_rows(original, back)


def test_null_empty_and_marker_text_are_written_distinctly(source, tmp_path):
    insert_actions(source, tricky_actions())
    result = export_table(source, ACTION, FULL, tmp_path, part_bytes=1 << 30)
    text = b"".join(read_part(tmp_path / p.name) for p in result.parts).decode()
    lines = {int(row[0]): row for row in csv.reader(io.StringIO(text))}
    raw_lines = text.splitlines()
    assert any(",\\N," in line for line in raw_lines), "a NULL number is an unquoted \\N"
    assert any(line.endswith(",\\N,f") for line in raw_lines), "a NULL query is an unquoted \\N"
    assert any(line.endswith(',"",f') for line in raw_lines), "'' is a quoted empty field"
    assert any(line.endswith(',"\\N",t') for line in raw_lines), "the text \\N is quoted, flagged"
    assert lines[2][4] == "2025-03-01 12:00:00.000001+00"  # the instant, with its offset


def test_an_incremental_slice_is_start_inclusive_end_exclusive(source, tmp_path):
    rows = tricky_actions()
    insert_actions(source, rows)
    run_slice = RunSlice(
        full_refresh=False,
        start=datetime(2025, 3, 1, 23, 59, 59, 1, tzinfo=UTC),
        end=datetime(2025, 3, 2, 0, 0, 0, 1, tzinfo=UTC),
    )
    result = export_table(source, ACTION, run_slice, tmp_path, part_bytes=1 << 30)
    assert result.rows == 1  # 23:59:59.000001 is in; 00:00:00.000001 is the next slice's


def test_parts_are_bounded_and_each_is_whole_csv(source, tmp_path):
    rows = [
        (
            i,
            1000 + i % 50,
            f"s{i // 10}",
            8,
            datetime(2025, 3, 1, 0, 0, i % 60, i),
            None,
            None,
            None,
            False,
            f"select {i},\n'{'x' * (i % 300)}'",
        )
        for i in range(1, 5001)
    ]
    insert_actions(source, rows)
    part_bytes = 64 * 1024
    result = export_table(source, ACTION, FULL, tmp_path, part_bytes=part_bytes)
    assert len(result.parts) > 5
    assert result.rows == 5000
    longest_row = 400
    for part in result.parts:
        assert part.raw_bytes < part_bytes + longest_row
        content = read_part(tmp_path / part.name)
        assert len(content) == part.raw_bytes
        assert len(list(csv.reader(io.StringIO(content.decode())))) == part.rows
        assert part.bytes == (tmp_path / part.name).stat().st_size


def test_an_empty_slice_still_gives_one_empty_part(source, tmp_path):
    run_slice = RunSlice(
        full_refresh=False,
        start=datetime(2030, 1, 1, tzinfo=UTC),
        end=datetime(2030, 1, 2, tzinfo=UTC),
    )
    result = export_table(source, ACTION, run_slice, tmp_path, part_bytes=1 << 20)
    assert [(p.name, p.rows) for p in result.parts] == [("part-0000.csv.zst", 0)]
    assert read_part(tmp_path / "part-0000.csv.zst") == b""


def test_a_rerun_replaces_the_parts_of_the_earlier_attempt(source, tmp_path):
    (tmp_path / "part-0007.csv.zst").write_bytes(b"stale")
    result = export_table(source, ACTION_TYPE, FULL, tmp_path, part_bytes=1 << 20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-0000.csv.zst"]
    assert result.rows == 10


def test_partitions_export_every_row_exactly_once_with_their_own_part_names(source, tmp_path):
    from tracking_sync.extract.partitions import partitions_from_cuts

    insert_actions(source, tricky_actions())  # ids 1..16
    seen = []
    for partition in partitions_from_cuts([4, 4, 11]):  # the second one is empty
        folder = tmp_path / partition.name
        result = export_table(source, ACTION, FULL, folder, part_bytes=1 << 30, partition=partition)
        assert [p.name for p in result.parts] == [f"part-{partition.index:02d}-0000.csv.zst"]
        text = read_part(folder / result.parts[0].name).decode()
        seen += [int(row[0]) for row in csv.reader(io.StringIO(text))]
        assert result.rows == len(list(csv.reader(io.StringIO(text))))
    assert sorted(seen) == [row[0] for row in tricky_actions()]

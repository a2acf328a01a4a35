"""Replay of contract section-2 traces: formats, bad rows, determinism."""

import csv
import io

import pytest
from conftest import readings_for

from tracking.localization.replay import (
    ESTIMATE_COLUMNS,
    TraceFormatError,
    format_ts,
    parse_ts,
    replay_file,
)

TAG = "mac:AA:BB:CC:DD:EE:01"


def trace_text(rows, header="ts,scanner,tag,rssi"):
    return header + "\n" + "\n".join(",".join(str(cell) for cell in row) for row in rows) + "\n"


def good_rows(site, iso=True, tag=TAG, seconds=10):
    return [
        (format_ts(r.ts, iso), r.scanner, tag, int(r.rssi))
        for r in readings_for(site, tag, 2.0, 2.5, "L1", seconds, start=1_795_507_200.0)
    ]


def replay_text(site, text):
    out = io.StringIO()
    stats = replay_file(site, io.StringIO(text), out)
    return stats, list(csv.reader(io.StringIO(out.getvalue())))


def test_iso_timestamps_round_trip():
    ts, iso = parse_ts("2026-11-24T08:00:00.123Z")
    assert iso
    assert format_ts(ts, True) == "2026-11-24T08:00:00.123Z"
    assert parse_ts("1795507200.5") == (1795507200.5, False)
    assert format_ts(1795507200.5, False) == "1795507200.500"


def test_estimates_have_the_contract_columns_and_the_trace_ts_format(two_rooms):
    stats, rows = replay_text(two_rooms, trace_text(good_rows(two_rooms, iso=True)))
    header, first = rows[0], rows[1]
    assert tuple(header[: len(ESTIMATE_COLUMNS)]) == ESTIMATE_COLUMNS
    assert first[0].endswith("Z")
    assert first[0][:19] == "2026-11-24T08:00:02"
    assert first[1:3] == [TAG, "L1"]
    assert first[5] == "A"
    assert float(first[6]) > 0
    assert stats.estimates == len(rows) - 1
    _stats, epoch_rows = replay_text(two_rooms, trace_text(good_rows(two_rooms, iso=False)))
    assert epoch_rows[1][0].startswith("1795507202.")


def test_estimates_are_ordered_by_ts(two_rooms):
    rows = good_rows(two_rooms, tag="mac:AA:BB:CC:DD:EE:01") + good_rows(
        two_rooms, tag="mac:AA:BB:CC:DD:EE:02"
    )
    rows.sort(key=lambda row: row[0])
    _stats, out = replay_text(two_rooms, trace_text(rows))
    times = [parse_ts(row[0])[0] for row in out[1:]]
    assert times == sorted(times)
    assert {row[1] for row in out[1:]} == {"mac:AA:BB:CC:DD:EE:01", "mac:AA:BB:CC:DD:EE:02"}


def test_tag_ids_are_canonicalised(two_rooms):
    _stats, rows = replay_text(
        two_rooms, trace_text(good_rows(two_rooms, tag="MAC:aa-bb-cc-dd-ee-01"))
    )
    assert {row[1] for row in rows[1:]} == {TAG}


def test_bad_rows_are_counted_by_reason_and_the_good_ones_still_used(two_rooms):
    rows = good_rows(two_rooms, seconds=4)
    bad = [
        ("yesterday", "sa", TAG, -60),
        ("2026-11-24T08:00:05.000Z", "sa", TAG, "loud"),
        ("2026-11-24T08:00:05.000Z", "sa", TAG, "nan"),
        ("2026-11-24T08:00:05.000Z", "sa", TAG, 55),
        ("2026-11-24T08:00:05.000Z", "sa", "bluetooth:1", -60),
        ("2026-11-24T08:00:05.000Z", "nobody", TAG, -60),
        ("2026-11-24T08:00:05.000Z", "sa", TAG),
    ]
    stats, out = replay_text(two_rooms, trace_text(rows + bad) + "\n")
    assert dict(stats.bad_rows) == {
        "bad_ts": 1,
        "bad_rssi": 1,
        "rssi_out_of_range": 2,
        "bad_tag": 1,
        "unknown_scanner": 1,
        "wrong_column_count": 1,
        "blank_row": 1,
    }
    assert stats.used == len(rows)
    assert stats.rows == len(rows) + len(bad) + 1
    assert len(out) > 1
    assert "unknown_scanner: 1" in stats.summary()


def test_a_file_without_the_header_is_rejected_as_a_whole(two_rooms):
    with pytest.raises(TraceFormatError, match="header"):
        replay_text(two_rooms, "1,sa,mac:AA:BB:CC:DD:EE:01,-60\n")
    with pytest.raises(TraceFormatError, match="empty"):
        replay_text(two_rooms, "")


def test_header_only_gives_header_only(two_rooms):
    stats, rows = replay_text(two_rooms, "ts,scanner,tag,rssi\n")
    assert len(rows) == 1
    assert stats.rows == stats.estimates == 0


def test_out_of_order_rows_are_counted_but_used(two_rooms):
    rows = good_rows(two_rooms, seconds=3)
    rows[3], rows[4] = rows[4], rows[3]
    stats, _out = replay_text(two_rooms, trace_text(rows))
    assert stats.out_of_order_rows == 1
    assert stats.used == len(rows)


def test_replaying_the_same_trace_twice_gives_identical_output(two_rooms):
    text = trace_text(good_rows(two_rooms, seconds=30))
    assert replay_text(two_rooms, text)[1] == replay_text(two_rooms, text)[1]

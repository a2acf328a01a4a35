"""`manage.py replay` against a site loaded with `manage.py load_site` (CONTRACT.md section 2)."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from tracking.simulation.layout import generate_hospital
from tracking.simulation.radio import RadioSimulator, write_trace

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded_site(tmp_path):
    document = generate_hospital(floors=1, rooms_per_side=4, assets_per_floor=4, seed=5)
    site_file = tmp_path / "site.json"
    site_file.write_text(json.dumps(document))
    call_command("load_site", str(site_file), stdout=io.StringIO())
    return document


@pytest.fixture
def trace(loaded_site, tmp_path):
    readings, _truth = RadioSimulator(loaded_site, seed=5).run(20)
    path = tmp_path / "trace.csv"
    write_trace(path, readings)
    with open(path, "a") as handle:
        handle.write("2026-11-24T08:00:30.000Z,no-such-scanner,mac:AA:BB:CC:DD:EE:FF,-60\n")
        handle.write("2026-11-24T08:00:30.000Z,s1-101,not-a-tag,-60\n")
    return path


def replay(trace_path, out_path):
    stderr = io.StringIO()
    call_command("replay", str(trace_path), "--out", str(out_path), "--no-progress", stderr=stderr)
    return stderr.getvalue()


def test_replay_writes_estimates_and_reports_unusable_rows(loaded_site, trace, tmp_path):
    out = tmp_path / "estimates.csv"
    summary = replay(trace, out)
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    assert list(rows[0])[:7] == ["ts", "tag", "floor", "x", "y", "zone", "accuracy_m"]
    zones = {z["name"] for z in loaded_site["buildings"][0]["floors"][0]["zones"]}
    assert {row["zone"] for row in rows} <= zones | {""}
    assert {row["floor"] for row in rows} == {"Level 1"}
    assert all(row["ts"].endswith("Z") for row in rows)
    assert "unknown_scanner: 1" in summary
    assert "bad_tag: 1" in summary


def test_replaying_twice_gives_identical_files(trace, tmp_path):
    replay(trace, tmp_path / "a.csv")
    replay(trace, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_a_file_that_is_not_a_trace_is_a_command_error(loaded_site, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("when,who\n1,2\n")
    with pytest.raises(CommandError, match="header"):
        replay(bad, tmp_path / "out.csv")
    with pytest.raises(CommandError, match="no such file"):
        replay(tmp_path / "missing.csv", tmp_path / "out.csv")


def test_without_a_site_the_command_says_what_to_do(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("ts,scanner,tag,rssi\n")
    with pytest.raises(CommandError, match="load_site"):
        replay(path, tmp_path / "out.csv")

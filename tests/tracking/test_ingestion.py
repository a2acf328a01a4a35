"""Validation of scanner batches: the envelope is all-or-nothing, readings are judged one by one."""

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracking.ingestion import (
    EnvelopeError,
    format_timestamp,
    parse_timestamp,
    validate_rssi_batch,
)

NOW = 1_795_000_000.0
TAG = "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:1:1"


def body(readings, **envelope) -> bytes:
    return json.dumps({"readings": readings, **envelope}).encode()


def reading(**overrides):
    return {"tag": TAG, "rssi": -67, "ts": "2026-11-18T08:26:40.123Z", **overrides}


def validate(payload: bytes, **limits):
    return validate_rssi_batch(payload, now=NOW, **limits)


def test_a_good_batch_is_accepted_with_canonical_tags_and_epoch_times():
    batch = validate(body([reading(tag=TAG.upper())], batch="b-1"))
    assert batch.batch_id == "b-1"
    [accepted] = batch.readings
    assert accepted.tag == TAG
    assert accepted.ts == pytest.approx(parse_timestamp("2026-11-18T08:26:40.123Z"))
    assert batch.rejected == []


def test_epoch_seconds_and_iso_timestamps_mean_the_same_moment():
    iso = validate(body([reading(ts="2026-11-18T08:26:40.123Z")])).readings[0].ts
    epoch = validate(body([reading(ts=iso)])).readings[0].ts
    assert iso == epoch
    assert format_timestamp(iso) == "2026-11-18T08:26:40.123Z"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"rssi": "loud"}, "rssi must be a number of dBm"),
        ({"rssi": True}, "rssi must be a number of dBm"),
        ({"rssi": -300}, "out of range"),
        ({"tag": "bluetooth:xyz"}, "unknown tag kind 'bluetooth'"),
        ({"tag": "no-colon"}, "must start with one of"),
        ({"tag": 42}, "tag id must be a string"),
        ({"ts": "yesterday"}, "is not ISO 8601"),
        ({"ts": "2026-11-18T08:26:40"}, "has no time zone"),
        ({"ts": NOW + 3600}, "in the future"),
        ({"ts": NOW - 3 * 86400}, "old"),
        ({"battery_pct": 140}, "battery_pct must be a number 0..100"),
        ({"colour": "red"}, "unknown field(s): colour"),
    ],
)
def test_one_bad_reading_is_rejected_by_index_and_the_good_ones_kept(bad, reason):
    batch = validate(body([reading(), reading(**bad), reading(ts=NOW - 1)]))
    assert len(batch.readings) == 2
    assert batch.indexes == [0, 2]
    [rejected] = batch.rejected
    assert rejected["index"] == 1
    assert reason in rejected["reason"]


@pytest.mark.parametrize(
    ("raw_rssi", "reason"),
    [
        ("NaN", "rssi must be a number of dBm, not nan"),
        ("-Infinity", "rssi must be a number of dBm, not -inf"),
        ("-1" + "0" * 30, "out of range"),
        ("1e999", "rssi must be a number of dBm, not inf"),
    ],
)
def test_numbers_strict_json_parsers_refuse_cost_only_their_reading(raw_rssi, reason):
    """NaN, Infinity and integers beyond 64 bits are read by Python's JSON parser: such a
    reading is rejected on its own, the batch is not refused."""
    good = json.dumps(reading(ts=NOW - 1))
    bad = json.dumps(reading()).replace('"rssi": -67', f'"rssi": {raw_rssi}')
    batch = validate(f'{{"readings": [{good}, {bad}]}}'.encode())
    assert len(batch.readings) == 1
    [rejected] = batch.rejected
    assert rejected["index"] == 1
    assert reason in rejected["reason"]


def test_a_reading_without_required_fields_names_them():
    batch = validate(body([{"tag": TAG}]))
    assert batch.rejected == [{"index": 0, "reason": "missing field(s): rssi, ts"}]


def test_a_reading_that_is_not_an_object_is_rejected():
    assert validate(body(["-67"])).rejected[0]["reason"].startswith("reading must be an object")


def test_the_same_reading_twice_in_a_batch_is_kept_once():
    batch = validate(body([reading(), reading()]))
    assert len(batch.readings) == 1
    assert "duplicate" in batch.rejected[0]["reason"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"readings": [', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"batch": "x"}', "must have a 'readings' list"),
        (b'{"readings": {}}', "must have a 'readings' list"),
        (b'{"readings": [], "scanner": "other"}', "unknown key(s) in body: scanner"),
        (b'{"readings": [], "batch": 7}', "'batch' must be a string"),
    ],
)
def test_a_malformed_envelope_is_refused_whole(payload, message):
    with pytest.raises(EnvelopeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(payload)


def test_a_batch_over_the_reading_limit_is_refused_whole():
    with pytest.raises(EnvelopeError, match="too many readings: 11 in one batch, at most 10"):
        validate(body([reading(ts=NOW - i) for i in range(11)]), max_readings=10)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_validator(payload):
    with contextlib.suppress(EnvelopeError):
        validate(payload)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["tag", "rssi", "ts", "battery_pct", "extra"]),
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
        ),
        max_size=20,
    )
)
def test_every_reading_is_either_accepted_or_rejected_with_a_reason(readings):
    batch = validate(body(readings))
    assert len(batch.readings) + len(batch.rejected) == len(readings)
    assert all(item["reason"] for item in batch.rejected)

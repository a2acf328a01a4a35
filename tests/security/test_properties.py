"""Property-based tests (hypothesis) of what parses untrusted input: site files (written by
hand, loaded by an administrator) and the two ingestion validators (posted by gateways and
sensors on the clinical network). Whatever arrives, they either accept it or refuse it with
their own error naming where the problem is; they never crash, and what they accept holds the
invariants the rest of the pipeline relies on."""

from __future__ import annotations

import copy
import json
import math
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from environment.validation import EARLIEST_TS, RANGES, validate_environment_batch
from environment.validation import EnvelopeError as EnvEnvelopeError
from hospital.sitefile import SiteFileError, parse_site_text, validate_site_document
from tests.hospital.site_documents import CONTRACT_EXAMPLE
from tracking.ingestion import EnvelopeError, validate_rssi_batch

NOW = 1_790_000_000.0
PROBLEM = re.compile(r"^\$|^[A-Za-z_]")
FAST = settings(
    max_examples=int(os.environ.get("WARDWISE_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)


def assert_problems_are_located(error: SiteFileError) -> None:
    assert error.problems, "a refusal names at least one problem"
    for problem in error.problems:
        assert isinstance(problem, str)
        path, sep, message = problem.partition(": ")
        assert sep, problem
        assert message, problem
        assert PROBLEM.match(path), problem


def judge_site(document) -> None:
    try:
        validated = validate_site_document(document)
    except SiteFileError as error:
        assert_problems_are_located(error)
    else:
        assert isinstance(validated, dict)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


SITE_PATHS = [p for p in _paths(CONTRACT_EXAMPLE) if p]


@FAST
@given(json_values)
def test_arbitrary_documents_never_crash_the_site_validator(document):
    judge_site(document)


@FAST
@given(
    st.lists(
        st.tuples(st.sampled_from(SITE_PATHS), st.one_of(json_values, st.just(KeyError))),
        min_size=1,
        max_size=4,
    )
)
def test_a_valid_site_file_with_anything_changed_anywhere(mutations):
    """Start from the contract's own example and replace or delete a few values anywhere in
    it: the validator still answers with located problems or a document, never a crash."""
    document = copy.deepcopy(CONTRACT_EXAMPLE)
    for path, value in mutations:
        parent = document
        try:
            for key in path[:-1]:
                parent = parent[key]
            if value is KeyError:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    judge_site(document)


@FAST
@given(st.text(max_size=300), st.booleans())
def test_arbitrary_text_never_crashes_the_site_parser(text, yaml_first):
    try:
        document = parse_site_text(text, yaml_first=yaml_first)
    except SiteFileError as error:
        assert_problems_are_located(error)
        return
    judge_site(document)


def test_the_contract_example_is_valid():
    validate_site_document(copy.deepcopy(CONTRACT_EXAMPLE))


def env_readings():
    reading = st.fixed_dictionaries(
        {},
        optional={
            "sensor": st.one_of(st.text(max_size=70), scalars),
            "ts": st.one_of(
                st.floats(min_value=NOW - 10**9, max_value=NOW + 10**4),
                st.text(max_size=30),
                st.datetimes().map(lambda d: d.isoformat() + "Z"),
                scalars,
            ),
            "temperature_c": st.one_of(st.floats(), scalars),
            "humidity_pct": st.one_of(st.floats(), scalars),
            "battery_pct": st.one_of(st.floats(), scalars),
            "door_open": scalars,
            "extra": scalars,
        },
    )
    return st.lists(st.one_of(reading, json_values), max_size=8)


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_environment_validator(body):
    with pytest.raises(EnvEnvelopeError) if not _is_envelope(body) else _nothing():
        validate_environment_batch(body, now=NOW)


@FAST
@given(env_readings(), st.one_of(st.none(), st.text(max_size=80), scalars))
def test_environment_batches_account_for_every_reading(readings, batch_id):
    body = {"readings": readings} if batch_id is None else {"readings": readings, "batch": batch_id}
    try:
        batch = validate_environment_batch(json.dumps(body).encode(), now=NOW)
    except EnvEnvelopeError:
        return
    accepted = len(batch.readings)
    assert accepted + len(batch.rejected) + batch.duplicates == len(readings)
    assert {r["index"] for r in batch.rejected} <= set(range(len(readings)))
    for reading in batch.readings:
        assert reading.sensor
        assert reading.sensor == reading.sensor.strip()
        assert EARLIEST_TS <= reading.ts <= NOW + 60
        for name, (low, high) in RANGES.items():
            value = getattr(reading, name)
            assert value is None or (math.isfinite(value) and low <= value <= high)
        assert any(v is not None for v in reading.values())


def rssi_readings():
    reading = st.fixed_dictionaries(
        {},
        optional={
            "tag": st.one_of(
                st.just("ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:9:1"),
                st.text(max_size=60),
                scalars,
            ),
            "rssi": st.one_of(st.integers(-200, 50), st.floats(), scalars),
            "ts": st.one_of(st.floats(min_value=NOW - 10**6, max_value=NOW + 10**3), scalars),
            "battery_pct": scalars,
        },
    )
    return st.lists(st.one_of(reading, json_values), max_size=8)


@FAST
@given(rssi_readings())
def test_rssi_batches_account_for_every_reading(readings):
    try:
        batch = validate_rssi_batch(json.dumps({"readings": readings}).encode(), now=NOW)
    except EnvelopeError:
        return
    assert len(batch.readings) + len(batch.rejected) == len(readings)
    assert sorted(batch.indexes + [r["index"] for r in batch.rejected]) == list(
        range(len(readings))
    )
    for reading in batch.readings:
        assert math.isfinite(reading.rssi)
        assert NOW - 86400 <= reading.ts <= NOW + 60


def _is_envelope(body: bytes) -> bool:
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(document, dict)
        and set(document) <= {"batch", "readings"}
        and isinstance(document.get("readings"), list)
    )


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

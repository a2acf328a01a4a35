"""The memo of metric fields (hospital.observability._series): the same field as computing it
each time, names still checked, and a bounded size."""

import pytest

from hospital import observability


def test_a_memoised_field_is_the_computed_one():
    labels = {"outcome": "accepted", "kind": "rssi"}
    first = observability._series("batches_total", labels)
    assert first == observability._field("batches_total", labels)
    assert observability._series("batches_total", dict(labels)) is first
    assert observability._series("batches_total", {}) == "batches_total"


def test_names_are_checked_before_anything_is_memoised():
    with pytest.raises(ValueError, match="invalid metric or label name"):
        observability._series("bad name", {})
    with pytest.raises(ValueError, match="invalid metric or label name"):
        observability._series("ok_total", {"bad-label": "x"})
    assert ("bad name",) not in observability._SERIES


def test_unhashable_label_values_are_encoded_each_time():
    field = observability._series("ok_total", {"zones": ["a", "b"]})
    assert field == observability._field("ok_total", {"zones": ["a", "b"]})


def test_the_memo_never_grows_past_its_bound(monkeypatch):
    monkeypatch.setattr(observability, "_SERIES", {})
    monkeypatch.setattr(observability, "_SERIES_MAX", 3)
    for i in range(10):
        assert observability._series("ok_total", {"n": str(i)}) == f'ok_total|{{"n": "{i}"}}'
    assert len(observability._SERIES) <= 3

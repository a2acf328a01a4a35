"""POST /api/v1/readings/environment/ against the real database (CONTRACT.md section 4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from environment.models import EnvironmentReading, ReadingBatch, SensorState
from hospital.devices import issue_token, revoke_tokens
from tests.coldchain import INGEST, iso, minutes_ago, reading
from tests.factories import ColdChainSensorFactory

pytestmark = pytest.mark.django_db


def stored(sensor):
    return list(
        EnvironmentReading.objects.filter(sensor=sensor)
        .order_by("ts")
        .values_list("temperature_c", flat=True)
    )


def test_good_batch_is_stored_before_the_202(fridge, post):
    body = {
        "batch": "b-1",
        "readings": [
            {
                "sensor": "fridge-pharm-2",
                "ts": iso(minutes_ago(2)),
                "temperature_c": 4.6,
                "humidity_pct": 41.0,
                "battery_pct": 88,
                "door_open": False,
            },
            reading(fridge, minutes_ago(1), 4.8),
        ],
    }
    response = post(fridge.token, body)
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": [],
        "batch": "b-1",
        "duplicate_batch": False,
    }
    assert stored(fridge) == [4.6, 4.8]
    first = EnvironmentReading.objects.filter(sensor=fridge).order_by("ts").first()
    assert (first.humidity_pct, first.battery_pct, first.door_open) == (41.0, 88.0, False)
    assert first.batch.batch_id == "b-1"
    state = SensorState.objects.get(sensor=fridge)
    assert state.temperature_c == 4.8
    assert state.battery_pct == 88.0
    assert state.pending_evaluation is False


def test_only_sensor_ts_and_one_measurement_are_required(fridge, post):
    response = post(
        fridge.token,
        {
            "readings": [
                {"sensor": fridge.serial, "ts": iso(minutes_ago(3)), "door_open": True},
                {"sensor": fridge.serial, "ts": iso(minutes_ago(2))},
                {"sensor": fridge.serial, "ts": minutes_ago(1).timestamp(), "battery_pct": 50},
            ]
        },
    )
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1]
    assert "no measurement" in body["rejected"][0]["reason"]
    assert body["batch"] is None


def test_partial_acceptance_names_each_bad_reading(fridge, post):
    now = datetime.now(tz=UTC)
    readings = [
        reading(fridge, minutes_ago(5), 5.0),
        {"sensor": fridge.serial, "ts": iso(minutes_ago(4)), "temperature_c": "cold"},
        {"sensor": fridge.serial, "ts": "yesterday", "temperature_c": 5.0},
        {"sensor": fridge.serial, "ts": iso(now + timedelta(minutes=10)), "temperature_c": 5.0},
        {"sensor": fridge.serial, "ts": iso(minutes_ago(3)), "humidity_pct": 140},
        {"sensor": fridge.serial, "ts": iso(minutes_ago(3)), "temperature_c": True},
        {"sensor": fridge.serial, "ts": iso(minutes_ago(2)), "door_open": "yes"},
        {"ts": iso(minutes_ago(2)), "temperature_c": 5.0},
        {"sensor": fridge.serial, "ts": iso(minutes_ago(2)), "temperature_c": 5, "extra": 1},
        {"sensor": fridge.serial, "ts": "1970-01-02T00:00:00Z", "temperature_c": 5.0},
        "not an object",
        reading(fridge, minutes_ago(1), 5.5),
    ]
    response = post(fridge.token, {"readings": readings})
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert set(reasons) == set(range(1, 11))
    assert "temperature_c must be a number" in reasons[1]
    assert "not ISO 8601" in reasons[2]
    assert "in the future" in reasons[3]
    assert "out of range" in reasons[4]
    assert "temperature_c must be a number" in reasons[5]
    assert "door_open must be true or false" in reasons[6]
    assert "missing field(s): sensor" in reasons[7]
    assert "unknown field(s): extra" in reasons[8]
    assert "clock is not set" in reasons[9]
    assert "must be an object" in reasons[10]
    assert stored(fridge) == [5.0, 5.5]


def test_a_little_clock_skew_is_tolerated(fridge, post):
    ahead = datetime.now(tz=UTC) + timedelta(minutes=4)
    response = post(fridge.token, {"readings": [reading(fridge, ahead)]})
    assert response.json()["accepted"] == 1


def test_duplicate_readings_and_a_resent_batch_are_not_counted_twice(fridge, post):
    body = {
        "batch": "spool-17",
        "readings": [reading(fridge, minutes_ago(m), 5.0 + m / 10) for m in (3, 2, 1)],
    }
    assert post(fridge.token, body).json()["accepted"] == 3
    again = post(fridge.token, body).json()
    assert again == {
        "accepted": 0,
        "duplicates": 3,
        "rejected": [],
        "batch": "spool-17",
        "duplicate_batch": True,
    }
    other_batch = {"readings": [*body["readings"][:2], reading(fridge, minutes_ago(0.5), 6.0)]}
    answer = post(fridge.token, other_batch).json()
    assert (answer["accepted"], answer["duplicates"]) == (1, 2)
    assert EnvironmentReading.objects.filter(sensor=fridge).count() == 4
    assert ReadingBatch.objects.filter(sensor=fridge, batch_id="spool-17").count() == 1


def test_same_sensor_and_ts_with_other_values_is_rejected_not_overwritten(fridge, post):
    moment = minutes_ago(1)
    post(fridge.token, {"readings": [reading(fridge, moment, 5.0)]})
    answer = post(fridge.token, {"readings": [reading(fridge, moment, 9.0)]}).json()
    assert answer["accepted"] == 0
    assert "different reading" in answer["rejected"][0]["reason"]
    in_batch = post(
        fridge.token,
        {"readings": [reading(fridge, minutes_ago(2), 5.0), reading(fridge, minutes_ago(2), 7.0)]},
    ).json()
    assert in_batch["accepted"] == 1
    assert "conflicts with reading 0" in in_batch["rejected"][0]["reason"]
    assert stored(fridge) == [5.0, 5.0]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"readings": [{"sensor": "fridge-pharm-2", "ts": "2026-', "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"batch": "x"}', "'readings' list"),
        (b'{"readings": {"sensor": "a"}}', "'readings' list"),
        (b'{"readings": [], "batch": 5}', "'batch' must be a string"),
        (b'{"readings": "\xc3\x28"}', "UTF-8"),
    ],
    ids=["garbage", "truncated", "array", "no-readings", "readings-object", "batch-type", "bytes"],
)
def test_malformed_envelope_is_a_400_naming_the_problem(fridge, post, body, problem):
    response = post(fridge.token, body, raw=True)
    assert response.status_code == 400
    assert problem in response.json()["detail"]
    assert not EnvironmentReading.objects.exists()


def test_too_many_readings_is_a_400_and_nothing_is_stored(fridge, post):
    start = minutes_ago(600)
    readings = [
        {
            "sensor": fridge.serial,
            "ts": (start + timedelta(seconds=i)).timestamp(),
            "door_open": False,
        }
        for i in range(5001)
    ]
    response = post(fridge.token, {"readings": readings})
    assert response.status_code == 400
    assert "too many readings" in response.json()["detail"]
    assert not EnvironmentReading.objects.exists()


def test_body_too_large_is_a_400(fridge, post, settings):
    settings.WARDWISE = {**settings.WARDWISE, "MAX_BODY_BYTES": 1000}
    body = {"readings": [reading(fridge, minutes_ago(i / 10)) for i in range(30)]}
    response = post(fridge.token, body)
    assert response.status_code == 400
    assert "larger than 1000 bytes" in response.json()["detail"]


def test_a_full_batch_of_5000_is_stored_in_one_request(fridge, post):
    start = minutes_ago(24 * 60)
    readings = [
        {
            "sensor": fridge.serial,
            "ts": (start + timedelta(seconds=10 * i)).timestamp(),
            "temperature_c": 4.0 + (i % 7) / 10,
        }
        for i in range(5000)
    ]
    response = post(fridge.token, {"batch": "big", "readings": readings})
    assert response.status_code == 202
    assert response.json()["accepted"] == 5000
    assert EnvironmentReading.objects.filter(sensor=fridge).count() == 5000


@pytest.mark.parametrize("header", ["Token ww_nope_nope", "Token garbage", "Bearer x", None])
def test_bad_or_missing_token_is_a_401(fridge, client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post(
        INGEST,
        data=json.dumps({"readings": [reading(fridge, minutes_ago(1))]}),
        content_type="application/json",
        **extra,
    )
    assert response.status_code == 401
    assert not EnvironmentReading.objects.exists()


def test_revoked_and_rotated_tokens_are_refused(fridge, post):
    old = fridge.token
    new = issue_token(sensor=fridge)
    assert post(old, {"readings": [reading(fridge, minutes_ago(2))]}).status_code == 401
    assert post(new, {"readings": [reading(fridge, minutes_ago(2))]}).status_code == 202
    revoke_tokens(sensor=fridge)
    assert post(new, {"readings": [reading(fridge, minutes_ago(1))]}).status_code == 401
    assert len(stored(fridge)) == 1


def test_a_sensor_token_may_post_only_for_its_own_sensor(fridge, post):
    other = ColdChainSensorFactory(serial="fridge-other")
    response = post(
        fridge.token,
        {
            "readings": [
                reading(other, minutes_ago(2)),
                reading(fridge, minutes_ago(2)),
                {"sensor": "no-such-sensor", "ts": iso(minutes_ago(1)), "temperature_c": 4.0},
            ]
        },
    )
    body = response.json()
    assert response.status_code == 202
    assert body["accepted"] == 1
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert "belongs to sensor 'fridge-pharm-2', not 'fridge-other'" in reasons[0]
    assert "unknown sensor" in reasons[2]
    assert stored(other) == []


def test_a_gateway_relays_only_the_sensors_assigned_to_it(gateway, relayed, fridge, post):
    response = post(
        gateway.token,
        {
            "batch": "gw-batch-1",
            "readings": [reading(relayed, minutes_ago(2), -20.0), reading(fridge, minutes_ago(2))],
        },
    )
    body = response.json()
    assert response.status_code == 202
    assert body["accepted"] == 1
    assert "not relayed by gateway 'gw-1'" in body["rejected"][0]["reason"]
    assert stored(relayed) == [-20.0]
    assert stored(fridge) == []
    batch = ReadingBatch.objects.get(batch_id="gw-batch-1")
    assert batch.scanner == gateway
    assert (batch.accepted, batch.rejected) == (1, 1)


def test_a_gateway_is_told_which_of_its_readings_name_unknown_or_decommissioned_sensors(
    gateway, relayed, post
):
    retired = ColdChainSensorFactory(serial="fridge-retired", gateway=gateway, is_active=False)
    body = post(
        gateway.token,
        {
            "readings": [
                reading(retired, minutes_ago(3)),
                reading(relayed, minutes_ago(3), -19.0),
                {"sensor": "no-such-sensor", "ts": iso(minutes_ago(3)), "temperature_c": 4.0},
            ]
        },
    ).json()
    assert body["accepted"] == 1
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert reasons == {
        0: "sensor 'fridge-retired' is decommissioned",
        2: "unknown sensor 'no-such-sensor'",
    }
    assert stored(relayed) == [-19.0]
    assert stored(retired) == []


def test_same_batch_id_from_two_devices_is_two_batches(gateway, relayed, fridge, post):
    assert (
        post(fridge.token, {"batch": "1", "readings": [reading(fridge, minutes_ago(1))]}).json()[
            "accepted"
        ]
        == 1
    )
    answer = post(gateway.token, {"batch": "1", "readings": [reading(relayed, minutes_ago(1))]})
    assert answer.json()["duplicate_batch"] is False
    assert answer.json()["accepted"] == 1


def test_decommissioned_sensors_are_refused(fridge, post):
    fridge.is_active = False
    fridge.save()
    body = post(fridge.token, {"readings": [reading(fridge, minutes_ago(1))]}).json()
    assert "decommissioned" in body["rejected"][0]["reason"]


def test_late_and_out_of_order_readings_are_stored(fridge, post):
    for minutes in (1, 30, 10, 600):
        body = {"readings": [reading(fridge, minutes_ago(minutes), minutes / 100)]}
        assert post(fridge.token, body).json()["accepted"] == 1
    assert stored(fridge) == [6.0, 0.3, 0.1, 0.01]
    assert SensorState.objects.get(sensor=fridge).temperature_c == 0.01


def test_a_gateway_batch_of_a_known_and_a_new_sensor_stores_and_evaluates_both(
    gateway, relayed, post
):
    """A sensor without a state row yet (its first upload) gets one in the same upload as a
    known sensor, and both are stored and evaluated."""
    newcomer = ColdChainSensorFactory(serial="fridge-lab-2", gateway=gateway)
    assert (
        post(gateway.token, {"readings": [reading(relayed, minutes_ago(3), -20.0)]}).status_code
        == 202
    )
    assert not SensorState.objects.filter(sensor=newcomer).exists()
    body = {
        "batch": "gw-7",
        "readings": [
            reading(relayed, minutes_ago(2), -21.0),
            reading(newcomer, minutes_ago(2), 4.0),
        ],
    }
    answer = post(gateway.token, body).json()
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (2, 0, [])
    assert stored(relayed) == [-20.0, -21.0]
    assert stored(newcomer) == [4.0]
    for sensor, temperature in ((relayed, -21.0), (newcomer, 4.0)):
        state = SensorState.objects.get(sensor=sensor)
        newest = EnvironmentReading.objects.filter(sensor=sensor).latest("ts")
        assert (state.temperature_c, state.evaluated_through) == (temperature, newest.pk)
        assert state.pending_evaluation is False
    batch = ReadingBatch.objects.get(batch_id="gw-7")
    assert (batch.accepted, batch.duplicates) == (2, 0)


def test_a_resent_batch_stores_what_it_did_not_store_before(fridge, post):
    """Same device, same batch id: counted once, but a reading the first delivery did not carry
    (a spool that grew) is stored and the batch record's counts add up."""
    first = {"batch": "spool-9", "readings": [reading(fridge, minutes_ago(2), 5.0)]}
    assert post(fridge.token, first).json()["accepted"] == 1
    again = {
        "batch": "spool-9",
        "readings": [*first["readings"], reading(fridge, minutes_ago(1), 5.2)],
    }
    answer = post(fridge.token, again).json()
    assert (answer["accepted"], answer["duplicates"], answer["duplicate_batch"]) == (1, 1, True)
    assert stored(fridge) == [5.0, 5.2]
    batch = ReadingBatch.objects.get(sensor=fridge, batch_id="spool-9")
    assert (batch.accepted, batch.duplicates) == (2, 1)
    assert SensorState.objects.get(sensor=fridge).temperature_c == 5.2

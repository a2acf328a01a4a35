"""Par levels through the real path: a pump taken to the soiled utility room becomes
`needs-cleaning`, the ICU falls below its critical minimum, the shared lifecycle opens an alert;
cleaning it brings the count back and the alert resolves. The board is readable by nurses."""

from __future__ import annotations

import pytest

from alerts.models import Alert, AlertState
from workflows import alerting, par
from workflows.models import ParLevel, ZoneGroup

pytestmark = pytest.mark.django_db


@pytest.fixture
def icu_par(ward):
    return ParLevel.objects.create(
        asset_type=ward["pumps"], department=ward["icu"], target=3, critical_min=2
    )


def test_below_critical_opens_an_alert_and_cleaning_resolves_it(
    ward, radio, icu_par, django_capture_on_commit_callbacks
):
    pumps = [radio.tagged(f"Pump {i}") for i in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        for pump in pumps:
            radio.place(pump, "clean-utility")
    assert par.check_par_levels() == 0
    row = par.board()[0]
    assert (row["available"], row["state"], row["shortfall"]) == (2, "below-target", 1)

    with django_capture_on_commit_callbacks(execute=True):
        radio.place(pumps[0], "soiled-utility")
    pumps[0].refresh_from_db()
    assert pumps[0].status == "needs-cleaning"
    alert = Alert.objects.get(kind=alerting.PAR_CRITICAL)
    assert alert.state == AlertState.OPEN
    assert alert.subject == f"par:{icu_par.pk}"
    assert alert.severity == "warning"
    assert alert.last_value == 1.0
    assert "critical minimum of 2" in alert.message
    assert par.board()[0]["alert_id"] == alert.pk

    par.check_par_levels()
    assert alert.events.filter(kind="opened").count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        radio.place(pumps[0], "clean-utility")
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert alert.resolved_automatically


def test_no_pump_left_is_critical(ward, icu_par):
    par.check_par_levels()
    assert Alert.objects.get(kind=alerting.PAR_CRITICAL).severity == "critical"


def test_zone_groups_count_only_their_zones(ward, radio):
    group = ZoneGroup.objects.create(name="Ward 3 clean rooms")
    group.zones.add(ward["zones"]["clean-utility"])
    ParLevel.objects.create(asset_type=ward["pumps"], zone_group=group, target=1, critical_min=1)
    pump = radio.tagged("Pump R")
    radio.place(pump, "room")
    assert par.board()[0]["available"] == 0
    radio.place(pump, "clean-utility")
    assert par.board()[0]["available"] == 1


def test_par_board_for_nurses_and_par_levels_for_biomed(client, ward, icu_par, nurse, biomed):
    client.force_login(nurse)
    board = client.get("/api/v1/workflows/par-board/")
    assert board.status_code == 200
    assert board.json()["levels"][0]["unit"] == "ICU"
    assert client.get("/api/v1/workflows/par-board/?type=wheelchair").json()["levels"] == []
    body = {
        "asset_type": ward["pumps"].pk,
        "department": ward["icu"].pk,
        "target": 2,
        "critical_min": 1,
    }
    assert client.post("/api/v1/workflows/par-levels/", body, "application/json").status_code == 403
    page = client.get("/par/")
    assert page.status_code == 200
    assert b"ICU" in page.content
    client.force_login(biomed)
    assert client.post("/api/v1/workflows/par-levels/", body, "application/json").status_code == 201
    body["critical_min"] = 5
    assert client.post("/api/v1/workflows/par-levels/", body, "application/json").status_code == 400
    client.logout()
    assert client.get("/api/v1/workflows/par-board/").status_code == 403

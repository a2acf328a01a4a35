"""`python -m bench.coldchain --upload-cost` measures what gunicorn runs: the device application
called as a WSGI server calls it, the answer read and closed (so Django's request_finished gives
the database connection back, as after a real request), and the PostgreSQL backends' CPU."""

from __future__ import annotations

import json
import os

import pytest
from django.core.signals import request_finished

from bench import coldchain
from environment.models import EnvironmentReading
from hospital import devices
from hospital.device_wsgi import DeviceHandler
from tests.coldchain import iso, minutes_ago
from tests.factories import ColdChainSensorFactory


def test_the_device_application_is_measured():
    assert isinstance(coldchain.device_application(), DeviceHandler)


@pytest.mark.django_db(transaction=True)
def test_an_upload_goes_through_the_device_application_like_a_servers_request(redis_bus):
    sensor = ColdChainSensorFactory()
    token = devices.issue_token(sensor=sensor)
    finished = []
    request_finished.connect(
        lambda sender, **kwargs: finished.append(sender), weak=False, dispatch_uid="upload-cost"
    )
    try:
        body = {
            "readings": [{"sensor": sensor.serial, "ts": iso(minutes_ago(1)), "temperature_c": 5.0}]
        }
        status = coldchain.wsgi_post(
            coldchain.device_application(),
            "/api/v1/readings/environment/",
            json.dumps(body).encode(),
            token,
        )
        elsewhere = coldchain.wsgi_post(
            coldchain.device_application(), "/api/v1/alerts/", b"{}", token
        )
    finally:
        request_finished.disconnect(dispatch_uid="upload-cost")
    assert status == 202
    assert elsewhere == 404  # the people's API is not in the device application
    assert len(finished) == 2  # each answer was closed, as gunicorn closes it
    assert EnvironmentReading.objects.filter(sensor=sensor).count() == 1


def test_process_cpu_is_read_from_proc():
    assert coldchain._process_cpu_s(os.getpid()) > 0
    assert coldchain._process_cpu_s(2**22 + 12345) == 0.0  # no such process

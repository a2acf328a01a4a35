"""`python -m bench.load --server granian` serves the device application through granian's WSGI
server: a real server answers device requests against the real database, with the device
application's headers."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from email.message import Message

import pytest
from django.conf import settings

from bench import load
from hospital import devices
from tests.factories import ScannerFactory
from tests.web.support import service_env, stop
from tracking.models import ScannerHealth

HEARTBEAT = "/api/v1/scanners/heartbeat/"


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def granian_server():
    port = load.free_port()
    process = subprocess.Popen(
        load.granian_command(port, processes=1, threads=2),
        cwd=load.ROOT,
        env=service_env(REDIS_URL=settings.REDIS_URL),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"granian did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def post(url: str, body: dict, token: str) -> tuple[int, Message, dict]:
    request = urllib.request.Request(  # noqa: S310
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.headers, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"{}")


@pytest.mark.e2e
@pytest.mark.services
@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL")
@pytest.mark.django_db(transaction=True)
def test_granian_serves_the_device_application(granian_server, redis_bus):
    gateway = ScannerFactory(serial="gw-granian")
    token = devices.issue_token(scanner=gateway)

    status, headers, _ = post(granian_server + HEARTBEAT, {"spool_depth": 3}, token)
    assert status == 204
    assert headers["X-Frame-Options"] == "DENY"  # header names are case-insensitive here
    assert ScannerHealth.objects.get(scanner=gateway).spool_depth == 3

    status, _, answer = post(granian_server + HEARTBEAT, {}, "ww_nothing_here")
    assert status == 401
    assert answer["detail"]
    status, _, answer = post(granian_server + "/api/v1/alerts/", {}, token)
    assert status == 404  # the people's API is not in the device application

"""The deployment files cannot run here (no Docker engine, no systemd as PID 1), so check what
can be checked: they parse, name every process of the production layout, and run commands that
exist in this repository."""

import configparser
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = [
    "wardwise-asgi@.service",
    "wardwise-worker@.service",
    "wardwise-beat.service",
    "wardwise-mqtt-bridge.service",
]


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_compose_has_every_process_of_the_layout():
    services = compose()["services"]
    assert set(services) >= {
        "postgres",
        "redis",
        "mosquitto",
        "migrate",
        "asgi",
        "worker",
        "beat",
        "mqtt-bridge",
    }
    for name in ("asgi", "worker", "beat", "mqtt-bridge"):
        service = services[name]
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert service["environment"]["DATABASE_URL"].startswith("postgres://")
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["mqtt-bridge"]["command"][-1] == "mqtt_bridge"
    assert services["worker"]["command"][:3] == ["celery", "-A", "hospital"]
    assert (ROOT / services["asgi"]["build"]["context"].replace("..", ".")).is_dir()


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_units_parse_and_run_existing_commands(unit):
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str
    parser.read_string((DEPLOY / "systemd" / unit).read_text())
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
    service = parser["Service"]
    assert service["EnvironmentFile"] == "/etc/wardwise/wardwise.env"
    assert service["Restart"] == "always"
    command = " ".join(service["ExecStart"].replace("\\\n", " ").split())
    if "manage.py" in command:
        assert command.split("manage.py ")[1].split()[0] in get_commands()
    else:
        assert "hospital" in command


def test_nginx_site_proxies_websockets_and_serves_static_files():
    site = (DEPLOY / "nginx" / "wardwise.conf").read_text()
    assert site.count("{") == site.count("}")
    assert "proxy_set_header Upgrade $http_upgrade;" in site
    assert "location /static/" in site
    assert "ssl_certificate " in site


def test_mosquitto_acl_confines_gateways_to_their_own_topics():
    acl = (DEPLOY / "mosquitto" / "wardwise.acl").read_text()
    assert "pattern write wardwise/%u/rssi" in acl
    assert "topic read wardwise/#" in acl

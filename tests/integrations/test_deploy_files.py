"""The deployment files cannot run here (no Docker engine, no systemd as PID 1, no nginx), so
check what can be checked: they parse, name every process of the production layout, run commands
that exist in this repository with flags the pinned gunicorn accepts, and nginx sends exactly the
device ingestion URLs to gunicorn, which serves them with the device application."""

import configparser
import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands
from django.urls import Resolver404, resolve, reverse
from gunicorn.config import Config as GunicornConfig

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = [
    "wardwise-asgi@.service",
    "wardwise-http@.service",
    "wardwise-worker@.service",
    "wardwise-beat.service",
    "wardwise-mqtt-bridge.service",
]
#: The device ingestion views that nginx sends to gunicorn (upstream wardwise_http).
DEVICE_VIEWS = {"ingest-rssi", "ingest-environment", "scanner-heartbeat"}
#: nginx closes idle upstream connections after 60 s (keepalive_timeout in an upstream block);
#: gunicorn must keep them longer, so that nginx is the side that closes.
NGINX_UPSTREAM_KEEPALIVE_S = 60


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def unit(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str
    parser.read_string((DEPLOY / "systemd" / name).read_text())
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
    return parser["Service"]


def exec_start(service: configparser.SectionProxy) -> str:
    return " ".join(service["ExecStart"].replace("\\\n", " ").split())


def gunicorn_config(argv: list[str]) -> GunicornConfig:
    """The settings gunicorn (the pinned version) makes of these arguments, as its command line
    does (gunicorn.app.base.Application.load_config); an unknown flag fails the test."""
    cfg = GunicornConfig()
    try:
        args = cfg.parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"gunicorn rejects its arguments: {argv}")
    for key, value in vars(args).items():
        if value is not None and key != "args":
            cfg.set(key.lower(), value)
    assert args.args == ["hospital.device_wsgi:application"]
    return cfg


def nginx_site() -> str:
    return (DEPLOY / "nginx" / "wardwise.conf").read_text()


def nginx_upstream(name: str) -> tuple[list[str], list[str]]:
    """(servers, backup servers) of an upstream block, as host:port."""
    block = re.search(rf"upstream {name} \{{([^{{}}]*)\}}", nginx_site())
    assert block, f"no upstream {name}"
    servers, backups = [], []
    for line in block.group(1).splitlines():
        words = line.split("#")[0].strip().rstrip(";").split()
        if words[:1] == ["server"]:
            (backups if "backup" in words else servers).append(words[1])
    return servers, backups


def expand(pattern: str) -> list[str]:
    """Every string an anchored regex of literals, groups and alternatives matches. Anything
    else (quantifiers, classes, wildcards) raises, so the list is the whole language."""
    assert pattern.startswith("^"), pattern
    assert pattern.endswith("$"), pattern

    def alternatives(i: int) -> tuple[list[str], int]:
        done, current = [], [""]
        while i < len(body) and body[i] != ")":
            char = body[i]
            if char == "|":
                done, current, i = done + current, [""], i + 1
            elif char == "(":
                inner, i = alternatives(i + 1)
                assert body[i : i + 1] == ")", pattern
                current, i = [c + x for c in current for x in inner], i + 1
            elif char == "\\":
                current, i = [c + body[i + 1] for c in current], i + 2
            elif char in ".*+?[]{}^$":
                raise ValueError(f"cannot enumerate {pattern!r}: {char!r}")
            else:
                current, i = [c + char for c in current], i + 1
        return done + current, i

    body = pattern[1:-1]
    strings, end = alternatives(0)
    assert end == len(body), pattern
    return strings


def enable_command() -> str:
    """The units docs/deployment.md's install step enables (`systemctl enable --now ...`, with its
    continuation lines)."""
    docs = (ROOT / "docs" / "deployment.md").read_text()
    command = re.search(r"systemctl enable --now ((?:\\\n|[^\n])*)", docs)
    assert command, "no `systemctl enable --now` in docs/deployment.md"
    return command.group(1)


def documented_instances(prefix: str) -> list[str]:
    """The instances of a templated unit that the install step enables."""
    return re.findall(rf"\b{prefix}@(\S+)", enable_command())


def test_compose_has_every_process_of_the_layout():
    services = compose()["services"]
    assert set(services) >= {
        "postgres",
        "redis",
        "mosquitto",
        "migrate",
        "asgi",
        "http",
        "worker",
        "beat",
        "mqtt-bridge",
    }
    for name in ("asgi", "http", "worker", "beat", "mqtt-bridge"):
        service = services[name]
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert service["environment"]["DATABASE_URL"].startswith("postgres://")
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["mqtt-bridge"]["command"][-1] == "mqtt_bridge"
    assert services["worker"]["command"][:3] == ["celery", "-A", "hospital"]
    assert (ROOT / services["asgi"]["build"]["context"].replace("..", ".")).is_dir()


def test_compose_serves_device_ingestion_through_gunicorn():
    service = compose()["services"]["http"]
    defaults = {"${WARDWISE_HTTP_WORKERS:-2}": "2", "${WARDWISE_HTTP_THREADS:-4}": "4"}
    command = [defaults.get(part, part) for part in service["command"]]
    assert command[0] == "gunicorn"
    cfg = gunicorn_config(command[1:])
    # The layout of the systemd unit (tested below), in a container.
    _, unit_cfg = http_unit_config()
    for setting in (
        "worker_class",
        "workers",
        "threads",
        "keepalive",
        "timeout",
        "graceful_timeout",
        "max_requests",
        "max_requests_jitter",
        "control_socket_disable",
    ):
        assert cfg.settings[setting].get() == unit_cfg.settings[setting].get(), setting
    port = cfg.bind[0].rsplit(":", 1)[1]
    assert f"{port}:{port}" in service["ports"]
    assert port not in {p.split(":")[0] for p in compose()["services"]["asgi"]["ports"]}
    # Docker waits stop_grace_period after SIGTERM before it kills: longer than gunicorn's.
    assert int(service["stop_grace_period"].rstrip("s")) > cfg.graceful_timeout


def test_every_unit_is_checked():
    assert {path.name for path in (DEPLOY / "systemd").glob("*.service")} == set(UNITS)


@pytest.mark.parametrize("name", UNITS)
def test_systemd_units_parse_and_run_existing_commands(name):
    service = unit(name)
    assert service["EnvironmentFile"] == "/etc/wardwise/wardwise.env"
    assert service["Restart"] == "always"
    assert service["User"] == "wardwise"
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "true"
    command = exec_start(service)
    assert command.startswith("/opt/wardwise/.venv/bin/")
    if "manage.py" in command:
        assert command.split("manage.py ")[1].split()[0] in get_commands()
    else:
        assert "hospital" in command


def http_unit_config() -> tuple[configparser.SectionProxy, GunicornConfig]:
    """wardwise-http@8101.service and the gunicorn settings of its ExecStart."""
    service = unit("wardwise-http@.service")
    command = shlex.split(exec_start(service))
    assert command[0] == "/opt/wardwise/.venv/bin/gunicorn"
    # systemd's substitutions: %i is the instance (the port), ${VAR} one word from Environment=
    # (which the EnvironmentFile may override).
    environment = dict(item.split("=", 1) for item in service["Environment"].split())
    argv = [
        re.sub(r"\$\{(\w+)\}", lambda m: environment[m.group(1)], arg.replace("%i", "8101"))
        for arg in command[1:]
    ]
    return service, gunicorn_config(argv)


def test_http_unit_runs_gunicorn_gthread_on_the_device_application():
    service, cfg = http_unit_config()
    assert cfg.bind == ["127.0.0.1:8101"]
    assert cfg.settings["worker_class"].get() == "gthread"  # said, not inferred from --threads
    assert cfg.worker_class_str == "gthread"
    assert cfg.workers >= 1
    assert cfg.threads > 1
    assert cfg.keepalive > NGINX_UPSTREAM_KEEPALIVE_S
    assert cfg.max_requests > 0
    assert cfg.max_requests_jitter > 0
    assert cfg.forwarded_allow_ips == ["127.0.0.1"]
    assert cfg.accesslog is None  # nginx keeps the access log
    # The control socket would be $HOME/.gunicorn/gunicorn.ctl: read-only under
    # ProtectSystem=strict, and the same path for every instance.
    assert cfg.control_socket_disable
    # Graceful stop: SIGTERM to gunicorn's arbiter only, which waits up to graceful_timeout for
    # the requests in flight; systemd must not kill before that.
    assert service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) > cfg.graceful_timeout
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    from hospital.device_wsgi import DeviceHandler, application

    assert isinstance(application, DeviceHandler)


def test_nginx_site_proxies_websockets_and_serves_static_files():
    site = nginx_site()
    assert site.count("{") == site.count("}")
    assert "proxy_set_header Upgrade $http_upgrade;" in site
    assert "location /static/" in site
    assert "ssl_certificate " in site


def test_nginx_sends_device_ingestion_and_only_it_to_gunicorn():
    site = nginx_site()
    blocks = re.findall(r"location ~ (\S+) \{([^{}]*)\}", site)
    to_http = [(pattern, body) for pattern, body in blocks if "http://wardwise_http;" in body]
    assert len(to_http) == 1, "one regex location proxies to upstream wardwise_http"
    pattern, body = to_http[0]
    assert site.index(pattern) < site.index("location / {")
    for directive in (
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',  # keepalive to the upstream
        "proxy_set_header Host $host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
    ):
        assert directive in body
    # Every path the location matches is one of the device ingestion views...
    paths = expand(pattern)
    for path in paths:
        try:
            match = resolve(path)
        except Resolver404:
            pytest.fail(f"nginx routes {path} to gunicorn, but Django has no such URL")
        assert match.url_name in DEVICE_VIEWS, path
        # ...which the device application (gunicorn's) serves at the same path.
        assert resolve(path, urlconf="hospital.device_urls").url_name == match.url_name, path
    # ...and every device ingestion view is matched (so none stays on the ASGI servers).
    for name in DEVICE_VIEWS:
        assert re.fullmatch(pattern, reverse(name)), name
    assert len(paths) == len(DEVICE_VIEWS)


def test_nginx_upstreams_match_the_documented_instances():
    http_servers, http_backups = nginx_upstream("wardwise_http")
    asgi_servers, asgi_backups = nginx_upstream("wardwise_asgi")
    assert not asgi_backups
    assert http_servers == [f"127.0.0.1:{port}" for port in documented_instances("wardwise-http")]
    assert asgi_servers == [f"127.0.0.1:{port}" for port in documented_instances("wardwise-asgi")]
    # Fallback while no gunicorn answers: the ASGI servers, which run the same views.
    assert set(http_backups) <= set(asgi_servers)
    assert not set(http_servers) & set(asgi_servers)


def test_docs_enable_every_unit():
    command = enable_command()
    for name in UNITS:
        base = name.removesuffix(".service")
        if base.endswith("@"):
            assert documented_instances(base[:-1]), name
        else:
            assert re.search(rf"\b{base}\b(?!@)", command), name


def test_mosquitto_acl_confines_gateways_to_their_own_topics():
    acl = (DEPLOY / "mosquitto" / "wardwise.acl").read_text()
    assert "pattern write wardwise/%u/rssi" in acl
    assert "topic read wardwise/#" in acl


def test_the_compiled_solver_caches_where_the_processes_may_write():
    """The code directory is read-only to the units (ProtectSystem=strict) and to the image's
    user, so numba's cache goes under the var directory, which both may write."""
    example = dict(
        line.split("=", 1)
        for line in (DEPLOY / "wardwise.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert example["NUMBA_CACHE_DIR"].startswith(example["WARDWISE_VAR_DIR"] + "/")
    for name in UNITS:
        assert example["WARDWISE_VAR_DIR"] in unit(name)["ReadWritePaths"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "NUMBA_CACHE_DIR=/var/lib/wardwise/" in dockerfile
    assert "chown wardwise: /var/lib/wardwise" in dockerfile

"""Configuration from a TOML file plus environment variables, and refusal of unsafe settings."""

import pytest

from scanners.config import ConfigError, load_config

BASE = """
[server]
url = "https://rtls.example.org"
token = "file-token"

[filters]
ibeacon_uuids = ["F7826DA6-4FA2-4E98-8024-BC5B71E0893E"]
mac_prefixes = ["AC:23:3F"]

[batching]
interval_ms = 2000

[sensors.serials]
"eddystone:edd1ebeac04e5defa017:0123456789ab" = "fridge-101"
"""


def write(tmp_path, text: str):
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_file_values_and_defaults(tmp_path):
    config = load_config(write(tmp_path, BASE), environ={})
    assert config.server.url == "https://rtls.example.org"
    assert config.batching.interval_ms == 2000
    assert config.batching.max_readings == 500
    assert config.aggregation.enabled is True
    assert config.sensors.serials == {"eddystone:edd1ebeac04e5defa017:0123456789ab": "fridge-101"}
    assert config.tag_filter().allows("ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:1:1")
    assert "file-token" not in repr(config)


def test_environment_overrides_the_file(tmp_path):
    config = load_config(
        write(tmp_path, BASE),
        environ={
            "WARDWISE_SERVER_TOKEN": "env-token",
            "WARDWISE_FILTERS_MAC_PREFIXES": "00:11:22, 33:44:55",
            "WARDWISE_AGGREGATION_ENABLED": "off",
            "WARDWISE_BATCHING_MAX_READINGS": "50",
            "WARDWISE_SPOOL_PATH": str(tmp_path / "s.db"),
            "WARDWISE_LOG_LEVEL": "DEBUG",
            "UNRELATED": "x",
        },
    )
    assert config.read_token() == "env-token"
    assert config.filters.mac_prefixes == ["00:11:22", "33:44:55"]
    assert config.aggregation.enabled is False
    assert config.batching.max_readings == 50
    assert config.spool.path == str(tmp_path / "s.db")
    assert config.log_level == "DEBUG"


def test_token_file_and_systemd_credentials(tmp_path, monkeypatch):
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "token").write_text("cred-token\n")
    text = BASE.replace('token = "file-token"\n', "")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match="token is required"):
        load_config(write(tmp_path, text), environ={})
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    config = load_config(write(tmp_path, text), environ={})
    assert config.read_token() == "cred-token"
    (tmp_path / "rotated").write_text("rotated-token")
    config = load_config(
        write(tmp_path, text), environ={"WARDWISE_SERVER_TOKEN_FILE": str(tmp_path / "rotated")}
    )
    assert config.read_token() == "rotated-token"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (BASE + "\n[ble]\ncolour = 1\n", {}, "ble.colour: unknown setting"),
        (BASE, {"WARDWISE_BATCHING_INTERVAL_MS": "soon"}, "env.batching.interval_ms"),
        (BASE.replace("https://", "http://"), {}, "plain http"),
        (BASE + "\n", {"WARDWISE_SERVER_TLS_VERIFY": "false"}, "tls_verify"),
        (BASE.replace('token = "file-token"', ""), {}, "token is required"),
        (BASE, {"WARDWISE_FILTERS_MAC_PREFIXES": ":"}, "filters"),
        (BASE, {"WARDWISE_RFID_ENABLED": "true"}, "rfid.host"),
        (BASE, {"WARDWISE_SERVER_CA_BUNDLE": "/nonexistent/ca.pem"}, "ca_bundle"),
        ("[server\n", {}, "agent.toml"),
    ],
)
def test_invalid_or_insecure_settings_are_refused(tmp_path, text, env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), environ=env)


def test_insecure_settings_allowed_only_when_explicit(tmp_path):
    text = BASE.replace("https://", "http://")
    text = text.replace(
        'token = "file-token"', 'token = "t"\ntls_verify = false\nallow_insecure = true'
    )
    config = load_config(write(tmp_path, text), environ={})
    assert config.server.allow_insecure


def test_plain_http_to_loopback_is_allowed(tmp_path):
    text = BASE.replace("https://rtls.example.org", "http://127.0.0.1:8000")
    assert load_config(write(tmp_path, text), environ={}).server.url.startswith("http://127")


def test_example_config_loads(monkeypatch):
    from pathlib import Path

    example = Path(__file__).parents[2] / "scanners" / "example.toml"
    config = load_config(
        example, environ={"WARDWISE_SERVER_TOKEN_FILE": "", "WARDWISE_SERVER_TOKEN": "x"}
    )
    assert config.filters.ibeacon_uuids

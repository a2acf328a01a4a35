"""Agent configuration: a TOML file, overridden by WARDWISE_<SECTION>_<KEY> environment variables.

Unknown keys are an error naming their path, so a typo in a filter never silently uploads
(or silently drops) tags. Unsafe settings are refused unless `server.allow_insecure` is set.
"""

import ipaddress
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from scanners.privacy import TagFilter

ENV_PREFIX = "WARDWISE_"


class ConfigError(ValueError):
    pass


def _default_state_path(name: str) -> str:
    return str(Path(os.environ.get("STATE_DIRECTORY", ".")) / name)


def _default_token_file() -> str | None:
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / "token").exists():
        return str(Path(credentials) / "token")
    return None


@dataclass
class ServerConfig:
    url: str = ""
    token: str | None = field(default=None, repr=False)
    token_file: str | None = field(default_factory=_default_token_file)
    ca_bundle: str | None = None
    tls_verify: bool = True
    timeout_s: float = 15.0
    allow_insecure: bool = False


@dataclass
class FilterConfig:
    ibeacon_uuids: list[str] = field(default_factory=list)
    eddystone_namespaces: list[str] = field(default_factory=list)
    mac_prefixes: list[str] = field(default_factory=list)
    epc_prefixes: list[str] = field(default_factory=list)


@dataclass
class BleConfig:
    enabled: bool = True
    scanning_mode: str = "auto"
    adapter: str | None = None


@dataclass
class RfidConfig:
    enabled: bool = False
    host: str | None = None
    port: int = 5084
    antennas: list[int] = field(default_factory=lambda: [0])
    keepalive_s: float = 10.0
    report_every_n_tags: int = 1
    reconnect_max_s: float = 60.0


@dataclass
class BatchingConfig:
    interval_ms: int = 1000
    max_readings: int = 500


@dataclass
class AggregationConfig:
    enabled: bool = True
    interval_ms: int = 2000
    statistic: str = "median"
    include_stats: bool = False


@dataclass
class SpoolConfig:
    path: str = field(default_factory=lambda: _default_state_path("spool.sqlite3"))
    max_bytes: int = 64 * 1024 * 1024


@dataclass
class UploadConfig:
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    retry_after_max_s: float = 3600.0
    max_readings: int = 2000
    max_bytes: int = 512 * 1024


@dataclass
class HeartbeatConfig:
    interval_s: float = 60.0


@dataclass
class SensorsConfig:
    environment_interval_s: float = 60.0
    serials: dict[str, str] = field(default_factory=dict)


@dataclass
class AgentConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    ble: BleConfig = field(default_factory=BleConfig)
    rfid: RfidConfig = field(default_factory=RfidConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    upload: UploadConfig = field(default_factory=UploadConfig)
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)
    sensors: SensorsConfig = field(default_factory=SensorsConfig)
    log_level: str = "INFO"

    def tag_filter(self) -> TagFilter:
        return TagFilter.build(
            self.filters.ibeacon_uuids,
            self.filters.eddystone_namespaces,
            self.filters.mac_prefixes,
            self.filters.epc_prefixes,
        )

    def read_token(self) -> str:
        """The device token, from the file when one is configured (so rotation needs no restart)."""
        if self.server.token_file:
            return Path(self.server.token_file).read_text(encoding="utf-8").strip()
        return (self.server.token or "").strip()


def _coerce(value, hint, path: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value == ""):
            return None
        inner = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        return _coerce(value, inner, path)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{path}: expected true/false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        try:
            return hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: expected a number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return [_coerce(item, item_hint, f"{path}[{index}]") for index, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {value!r}")
        return {str(key): _coerce(item, str, f"{path}.{key}") for key, item in value.items()}
    raise ConfigError(f"{path}: unsupported setting type")


def _apply(target, data: dict, path: str) -> None:
    hints = typing.get_type_hints(type(target))
    known = {f.name for f in fields(target)}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else key
        if key not in known:
            raise ConfigError(f"{key_path}: unknown setting")
        current = getattr(target, key)
        if hasattr(current, "__dataclass_fields__"):
            if not isinstance(value, dict):
                raise ConfigError(f"{key_path}: expected a table")
            _apply(current, value, key_path)
        else:
            setattr(target, key, _coerce(value, hints[key], key_path))


def _env_overrides(environ: typing.Mapping[str, str]) -> dict:
    """WARDWISE_SERVER_URL -> {"server": {"url": ...}}; lists are comma-separated."""
    overrides: dict = {}
    sections = {f.name for f in fields(AgentConfig) if f.name != "log_level"}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        if rest == "log_level":
            overrides["log_level"] = value
            continue
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            continue
        overrides.setdefault(section, {})[rest[len(section) + 1 :]] = value
    return overrides


def load_config(path: str | Path | None, environ: typing.Mapping[str, str] | None = None):
    """Read the file (optional), apply the environment, validate; raises ConfigError."""
    environ = os.environ if environ is None else environ
    config = AgentConfig()
    if path is not None:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as error:
            raise ConfigError(f"cannot read {path}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: {error}") from None
        _apply(config, data, "")
    _apply(config, _env_overrides(environ), "env")
    validate(config)
    return config


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate(config: AgentConfig) -> None:
    server = config.server
    parts = urlsplit(server.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("server.url: expected an http(s) URL such as https://rtls.example.org")
    if not server.token and not server.token_file:
        raise ConfigError("server.token or server.token_file: a device token is required")
    if server.token_file and not Path(server.token_file).is_file():
        raise ConfigError(f"server.token_file: {server.token_file} does not exist")
    if server.ca_bundle and not Path(server.ca_bundle).is_file():
        raise ConfigError(f"server.ca_bundle: {server.ca_bundle} does not exist")
    if not server.allow_insecure:
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ConfigError(
                "server.url: plain http would send the device token in clear text; use https "
                "or set server.allow_insecure = true (test networks only)"
            )
        if not server.tls_verify:
            raise ConfigError(
                "server.tls_verify = false accepts any certificate; set server.allow_insecure = "
                "true as well if you really mean it"
            )
    if config.ble.scanning_mode not in ("auto", "passive", "active"):
        raise ConfigError("ble.scanning_mode: expected auto, passive or active")
    if config.rfid.enabled and not config.rfid.host:
        raise ConfigError("rfid.host: required when rfid.enabled = true")
    if config.batching.interval_ms <= 0 or config.batching.max_readings <= 0:
        raise ConfigError("batching: interval_ms and max_readings must be positive")
    if config.upload.max_readings <= 0 or config.upload.max_bytes <= 0:
        raise ConfigError("upload: max_readings and max_bytes must be positive")
    if config.aggregation.interval_ms <= 0:
        raise ConfigError("aggregation.interval_ms: must be positive")
    if config.aggregation.statistic not in ("median", "max"):
        raise ConfigError("aggregation.statistic: expected median or max")
    if config.spool.max_bytes < 64 * 1024:
        raise ConfigError("spool.max_bytes: at least 65536")
    try:
        config.tag_filter()
    except ValueError as error:
        raise ConfigError(f"filters: {error}") from None

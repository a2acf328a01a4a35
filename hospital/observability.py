"""Metrics, structured logs and health checks that a hospital IT team can scrape and alert on.

The web processes and the Celery workers are separate processes, so the counters they share live
in Redis (when REDIS_URL is set) and are rendered for Prometheus at scrape time; without Redis
(the embedded demo, where everything runs in one process) an in-process dict does the same job.

This module is imported by the logging configuration, before the app registry is ready: it must
not import models at module level.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

#: Prefix of the Redis hashes holding shared metrics (tests point it elsewhere).
KEY_PREFIX = "ww:metrics"
METRIC_PREFIX = "wardwise_"
#: The raw-reading streams of the workers (tracking/bus.py), reported as queue depth.
STREAM_PATTERN = "ww:rssi:*"

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

#: Known metrics: (type, help). Names not listed here still work: a name written with `incr`
#: is a counter, one written with `set_gauge` a gauge.
METRICS: dict[str, tuple[str, str]] = {
    "readings_accepted_total": ("counter", "Readings accepted by ingestion (answered 202)."),
    "readings_rejected_total": ("counter", "Readings rejected by ingestion, by reason."),
    "batches_total": ("counter", "Reading batches received, by outcome."),
    "readings_refused_total": (
        "counter",
        "Valid readings of batches refused (503) because the workers were too far behind.",
    ),
    "positions_total": ("counter", "Positions computed by the workers; rate() is positions/s."),
    "readings_processed_total": ("counter", "Readings the workers applied to the tag filters."),
    "readings_dropped_total": ("counter", "Readings the workers dropped, by reason (e.g. late)."),
    "websocket_clients": ("gauge", "Open floor websocket connections (all web processes)."),
    "processing_lag_seconds": (
        "gauge",
        "Receipt-to-position delay of the newest batch a worker processed.",
    ),
    "reading_wait_seconds": (
        "histogram",
        "Time from a reading's receipt (202) until a worker applied it: the late allowance "
        "plus the wait for its shard's next drain.",
    ),
    "drain_seconds": ("histogram", "Wall time of one drain of a shard by a worker."),
    "late_allowance_seconds": (
        "histogram",
        "How far behind a shard's newest event time its readings were released, per drain: "
        "learned from how late they arrive (tracking/lateness.py).",
    ),
}

#: Upper bounds (seconds) of each histogram's buckets; +Inf is implied. Stored as counters per
#: bucket (not cumulative) and summed up at scrape time.
HISTOGRAM_BUCKETS: dict[str, tuple[float, ...]] = {
    "reading_wait_seconds": (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0),
    "drain_seconds": (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    "late_allowance_seconds": (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0),
}
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum")


def _check_name(name: str, labels: dict) -> None:
    if not _NAME.match(name) or not all(_NAME.match(label) for label in labels):
        raise ValueError(f"invalid metric or label name: {name!r} {sorted(labels)}")


def _field(name: str, labels: dict) -> str:
    """One hash field per (name, label set): `name` or `name|{"label":"value",...}`."""
    if not labels:
        return name
    return name + "|" + json.dumps({k: str(v) for k, v in sorted(labels.items())})


#: Memo of `_series`: ingestion counts the same few series on every batch.
_SERIES: dict[tuple, str] = {}
_SERIES_MAX = 4096


def _series(name: str, labels: dict) -> str:
    """`_check_name`, then `_field`, memoised per (name, labels as passed)."""
    try:
        key = (name, *labels.items())
        return _SERIES[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable label value: checked and encoded every time
        _check_name(name, labels)
        return _field(name, labels)
    _check_name(name, labels)
    field = _SERIES[key] = _field(name, labels)
    if len(_SERIES) > _SERIES_MAX:  # label values are meant to be few; never grow without bound
        _SERIES.clear()
    return field


def _parse_field(field: str) -> tuple[str, dict[str, str]]:
    name, _, encoded = field.partition("|")
    return name, (json.loads(encoded) if encoded else {})


class _LocalStore:
    """Shared metrics for a single process (no Redis configured)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, float] = defaultdict(float)
        self.gauges: dict[str, float] = {}

    def incr(self, field: str, amount: float) -> None:
        with self._lock:
            self.counters[field] += amount

    def set_gauge(self, field: str, value: float) -> None:
        with self._lock:
            self.gauges[field] = value

    def read(self) -> tuple[dict[str, float], dict[str, float]]:
        with self._lock:
            return dict(self.counters), dict(self.gauges)

    def reset(self) -> None:
        with self._lock:
            self.counters.clear()
            self.gauges.clear()


_local = _LocalStore()
_last_error_log = 0.0


@lru_cache(maxsize=4)
def _redis_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=1.0, socket_connect_timeout=1.0, decode_responses=True
    )


def redis_client() -> redis.Redis | None:
    """The shared Redis, or None in the embedded set-up."""
    url = getattr(settings, "REDIS_URL", "")
    return _redis_for(url) if url else None


def _counters_key() -> str:
    return f"{KEY_PREFIX}:counters"


def _gauges_key() -> str:
    return f"{KEY_PREFIX}:gauges"


def _log_store_error(exc: Exception) -> None:
    """Metrics must never fail the request or task that records them: log, at most once a
    minute, and carry on."""
    global _last_error_log
    now = time.monotonic()
    if now - _last_error_log > 60:
        _last_error_log = now
        logger.warning("metrics store unavailable: %s", exc.__class__.__name__)


def incr(name: str, amount: float = 1, **labels: str) -> None:
    """Add `amount` to the shared counter `name` (with optional labels). Cheap: one HINCRBY;
    call it once per batch with the batch's count rather than once per reading."""
    field = _series(name, labels)
    client = redis_client()
    if client is None:
        _local.incr(field, amount)
        return
    try:
        if float(amount).is_integer():
            client.hincrby(_counters_key(), field, int(amount))
        else:
            client.hincrbyfloat(_counters_key(), field, amount)
    except redis.RedisError as exc:
        _log_store_error(exc)


def queue_incr(pipe, name: str, amount: float = 1, **labels: str) -> None:
    """`incr` as one more command on a caller's Redis pipeline to the same server (the ingestion
    request sends its whole batch in one round trip); in-process without a shared store."""
    field = _series(name, labels)
    if redis_client() is None:
        _local.incr(field, amount)
    elif float(amount).is_integer():
        pipe.hincrby(_counters_key(), field, int(amount))
    else:
        pipe.hincrbyfloat(_counters_key(), field, amount)


def queue_observe(pipe, name: str, values: Sequence[float]) -> None:
    """Observations of the histogram `name` (HISTOGRAM_BUCKETS) as commands on a caller's
    pipeline: one counter per bucket touched, plus the sum (the count is the buckets' total). A
    drain records all of its readings' waits at once: a few commands, not one per reading."""
    if not values:
        return
    bounds = HISTOGRAM_BUCKETS[name]
    for index, count in Counter(bisect_left(bounds, value) for value in values).items():
        le = str(bounds[index]) if index < len(bounds) else "+Inf"
        queue_incr(pipe, f"{name}_bucket", count, le=le)
    queue_incr(pipe, f"{name}_sum", float(sum(values)))


def histogram_part(field_name: str) -> tuple[str, str] | None:
    """("reading_wait_seconds", "_bucket") for a stored histogram field's name, else None."""
    for suffix in _HISTOGRAM_SUFFIXES:
        base = field_name.removesuffix(suffix)
        if base != field_name and base in HISTOGRAM_BUCKETS:
            return base, suffix
    return None


def set_gauge(name: str, value: float, **labels: str) -> None:
    """Set the shared gauge `name` (with optional labels) to `value`; the last writer wins."""
    field = _series(name, labels)
    client = redis_client()
    if client is None:
        _local.set_gauge(field, float(value))
        return
    try:
        client.hset(_gauges_key(), field, repr(float(value)))
    except redis.RedisError as exc:
        _log_store_error(exc)


def read_shared() -> tuple[dict[str, float], dict[str, float]]:
    """(counters, gauges) as stored, keyed by hash field."""
    client = redis_client()
    if client is None:
        return _local.read()
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(_counters_key())
    pipe.hgetall(_gauges_key())
    counters, gauges = pipe.execute()
    return (
        {k: float(v) for k, v in counters.items()},
        {k: float(v) for k, v in gauges.items()},
    )


def reset() -> None:
    """Forget every shared metric (tests, or an operator after a crashed web process left its
    websocket clients counted)."""
    client = redis_client()
    if client is None:
        _local.reset()
    else:
        client.delete(_counters_key(), _gauges_key())


def stream_depths(client: redis.Redis) -> list[dict]:
    """Length of each raw-reading stream and, for consumer groups, entries not yet delivered
    and the age of the oldest of them (a lag that grows when the workers stall)."""
    depths = []
    for key in sorted(client.scan_iter(match=STREAM_PATTERN, count=500, _type="stream")):
        entry = {"stream": key, "length": client.xlen(key), "groups": []}
        for group in client.xinfo_groups(key):
            last = group.get("last-delivered-id") or "0-0"
            nxt = client.xrange(key, min=f"({last}", count=1)
            age = 0.0
            if nxt:
                age = max(0.0, time.time() - int(nxt[0][0].split("-")[0]) / 1000.0)
            entry["groups"].append(
                {
                    "group": group["name"],
                    "lag": group.get("lag") or 0,
                    "pending": group.get("pending") or 0,
                    "oldest_age_s": age,
                }
            )
        depths.append(entry)
    return depths


def celery_queue_lengths(client: redis.Redis) -> dict[str, int]:
    """Messages waiting in the Celery queues on the Redis broker (one list per queue)."""
    from hospital.celery import app

    names = {app.conf.task_default_queue or "celery"}
    names.update(q.name for q in (app.conf.task_queues or []))
    return {name: client.llen(name) for name in sorted(names)}


class SharedCollector:
    """Renders the shared metrics, stream depths and queue lengths at scrape time."""

    def collect(self):
        counters, gauges = read_shared()
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}

        def family(name: str, labels: list[str], default_kind: str):
            kind, help_text = METRICS.get(name, (default_kind, f"Wardwise {name}."))
            key = f"{name}:{','.join(labels)}"
            if key not in families:
                cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                families[key] = cls(METRIC_PREFIX + name, help_text, labels=labels)
            return families[key]

        histograms: dict[str, dict[str, float]] = defaultdict(dict)
        for store, kind in ((counters, "counter"), (gauges, "gauge")):
            for field, value in sorted(store.items()):
                name, labels = _parse_field(field)
                part = histogram_part(name) if kind == "counter" else None
                if part is not None:
                    base, suffix = part
                    histograms[base][labels["le"] if suffix == "_bucket" else suffix] = value
                    continue
                keys = sorted(labels)
                family(name, keys, kind).add_metric([labels[k] for k in keys], value)
        yield from families.values()
        for name, stored in sorted(histograms.items()):
            yield _histogram_family(name, stored)

        client = redis_client()
        if client is None:
            return
        try:
            depths = stream_depths(client)
            queues = celery_queue_lengths(client)
        except redis.RedisError as exc:
            _log_store_error(exc)
            return
        length = GaugeMetricFamily(
            METRIC_PREFIX + "queue_depth",
            "Entries in each raw-reading stream (bounded by WARDWISE_STREAM_MAXLEN).",
            labels=["stream"],
        )
        lag = GaugeMetricFamily(
            METRIC_PREFIX + "stream_lag",
            "Stream entries not yet delivered to a consumer group.",
            labels=["stream", "group"],
        )
        age = GaugeMetricFamily(
            METRIC_PREFIX + "stream_oldest_undelivered_age_seconds",
            "Age of the oldest entry a consumer group has not read yet.",
            labels=["stream", "group"],
        )
        for entry in depths:
            length.add_metric([entry["stream"]], entry["length"])
            for group in entry["groups"]:
                lag.add_metric([entry["stream"], group["group"]], group["lag"])
                age.add_metric([entry["stream"], group["group"]], group["oldest_age_s"])
        celery = GaugeMetricFamily(
            METRIC_PREFIX + "celery_queue_length",
            "Tasks waiting in each Celery queue on the broker.",
            labels=["queue"],
        )
        for name, count in queues.items():
            celery.add_metric([name], count)
        yield from (length, lag, age, celery)


def _histogram_family(name: str, stored: dict[str, float]) -> HistogramMetricFamily:
    """Prometheus's cumulative buckets from the per-bucket counters, every bound included."""
    running = 0.0
    buckets = []
    for le in [*map(str, HISTOGRAM_BUCKETS[name]), "+Inf"]:
        running += stored.get(le, 0.0)
        buckets.append((le, running))
    return HistogramMetricFamily(
        METRIC_PREFIX + name,
        METRICS[name][1],
        buckets=buckets,
        sum_value=stored.get("_sum", 0.0),
    )


def render_metrics() -> bytes:
    """The Prometheus text exposition: shared metrics plus this web process's own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SharedCollector())
    ProcessCollector(namespace=METRIC_PREFIX + "web", registry=registry)
    return generate_latest(registry)


def metrics_authorized(header: str) -> bool:
    """Scraping needs `Authorization: Bearer $METRICS_TOKEN`; without a token configured the
    endpoint is off, since queue depths and client counts are not for the public."""
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return False
    scheme, _, presented = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip(), token)


@never_cache
@require_GET
def metrics_view(request):
    if not getattr(settings, "METRICS_TOKEN", ""):
        return HttpResponse("metrics are disabled: set METRICS_TOKEN", status=404)
    if not metrics_authorized(request.headers.get("Authorization", "")):
        response = HttpResponse("a valid bearer token is required", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        logger.warning("health: database unreachable", exc_info=True)
        return "down"
    return "ok"


def check_redis() -> str:
    client = redis_client()
    if client is None:
        return "not-configured"
    try:
        client.ping()
    except redis.RedisError:
        logger.warning("health: redis unreachable", exc_info=True)
        return "down"
    return "ok"


def check_workers(timeout_s: float) -> tuple[str, int]:
    """('ok', n) when n Celery workers answer a ping within `timeout_s`."""
    from hospital.celery import app

    broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if not broker or broker.startswith("memory://"):
        return "not-configured", 0
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
            replies = app.control.ping(timeout=timeout_s, connection=conn)
    except Exception:
        logger.warning("health: celery ping failed", exc_info=True)
        return "down", 0
    return ("ok" if replies else "down"), len(replies)


def health_report(worker_timeout_s: float = 1.0) -> tuple[bool, dict]:
    """(healthy, report). Reports states and counts only: no hosts, versions or errors, since
    the endpoint answers anyone."""
    database = check_database()
    redis_state = check_redis()
    components = {"database": {"status": database}, "redis": {"status": redis_state}}
    if redis_state == "down":
        components["workers"] = {"status": "unknown", "count": 0}
    else:
        state, count = check_workers(worker_timeout_s)
        components["workers"] = {"status": state, "count": count}
    healthy = all(c["status"] in ("ok", "not-configured") for c in components.values())
    return healthy, {
        "status": "ok" if healthy else "unavailable",
        "time": datetime.now(UTC).isoformat(),
        "components": components,
    }


@never_cache
@require_GET
def health_view(request):
    timeout = float(getattr(settings, "HEALTH_WORKER_PING_TIMEOUT_S", 1.0))
    healthy, report = health_report(timeout)
    return JsonResponse(report, status=200 if healthy else 503)


_RECORD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line (LOG_FORMAT=json), so log shippers need no parsing rules.
    Fields passed with `extra=` are included as keys."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str)

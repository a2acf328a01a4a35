"""The MQTT bridge: subscribes to gateway topics on a broker and feeds every message through the
same intake as the REST API (tracking.intake), so validation, de-duplication, the reading bus
and the workers are shared. `python manage.py mqtt_bridge` runs it (docs/mqtt.md).

A message is handled in paho's network thread by `Bridge.handle`, a plain method that never
raises: a bad message is counted and logged, and the bridge carries on. paho reconnects with
back-off when the broker goes away, and `on_connect` subscribes again; the session is persistent
(fixed client id, clean_start off), so QoS 1 messages published while the bridge was away are
delivered when it comes back.

A message is acknowledged only once the intake has decided about it. When it cannot decide yet
(the workers are too far behind, `tracking.intake.Overloaded`, or Redis or the database is down)
the message is kept unacknowledged and retried after the wait the intake asks for, and every
later message queues behind it, so acknowledgements keep their order and the broker, whose
in-flight window then fills, holds the rest: nothing is lost, whether the bridge retries or
dies (the broker redelivers what was never acknowledged).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from django.conf import settings
from django.db import close_old_connections
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hospital import observability
from hospital.api import RETRY_AFTER_S, UNAVAILABLE_ERRORS
from hospital.devices import verify_token
from integrations import mqtt
from tracking.intake import EnvelopeError, Overloaded, accept_rssi_batch
from tracking.models import Scanner

log = logging.getLogger(__name__)

AUTH_TOKEN = "token"  # noqa: S105  (a mode name)  # nosec B105
AUTH_BROKER = "broker"
CACHE_S = 30.0
SESSION_EXPIRY_S = 3600
#: Unacknowledged messages the broker may send ahead (MQTT 5 Receive Maximum): bounds what the
#: bridge holds in memory while it waits to retry; the rest wait at the broker.
RECEIVE_MAXIMUM = 100
#: Outcomes that decide nothing yet: the message is retried, not acknowledged.
RETRY_LATER = frozenset({"overloaded", "unavailable"})


@dataclass
class BridgeConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    username: str = ""
    password: str = ""
    client_id: str = "wardwise-bridge"
    topics: list[str] = field(default_factory=lambda: ["wardwise/#"])
    qos: int = 1
    gateway_auth: str = AUTH_TOKEN
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    keepalive: int = 30

    @classmethod
    def from_settings(cls) -> BridgeConfig:
        conf = settings.MQTT
        url = urlsplit(conf["URL"])
        if url.scheme not in {"mqtt", "mqtts"}:
            raise ValueError(f"MQTT_URL must be mqtt:// or mqtts://, not {conf['URL']!r}")
        tls = url.scheme == "mqtts"
        auth = conf["GATEWAY_AUTH"]
        if auth not in {AUTH_TOKEN, AUTH_BROKER}:
            raise ValueError(f"MQTT_GATEWAY_AUTH must be {AUTH_TOKEN} or {AUTH_BROKER}")
        return cls(
            host=url.hostname or "127.0.0.1",
            port=url.port or (8883 if tls else 1883),
            tls=tls,
            username=conf["USERNAME"] or unquote(url.username or ""),
            password=conf["PASSWORD"] or unquote(url.password or ""),
            client_id=conf["CLIENT_ID"],
            topics=list(conf["TOPICS"]),
            qos=conf["QOS"],
            gateway_auth=auth,
            ca_file=conf["TLS_CA_FILE"],
            cert_file=conf["TLS_CERT_FILE"],
            key_file=conf["TLS_KEY_FILE"],
        )


@dataclass
class Deferred:
    """A message waiting, unacknowledged, for its next try."""

    message: paho.MQTTMessage
    token: str | None
    connection: int
    due: float


class Bridge:
    def __init__(self, config: BridgeConfig):
        self.config = config
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._scanners: dict[str, tuple[float, Scanner | None]] = {}
        self._tokens: dict[tuple[str, str], float] = {}
        self.connected = threading.Event()
        #: Messages to retry, oldest first; while any wait, later messages wait behind them.
        self._deferred: deque[Deferred] = deque()
        self._deferred_changed = threading.Condition()
        #: Bumped at each disconnect: message ids of an older connection must not be acknowledged.
        self._connection = 0
        self._stopping = threading.Event()
        self._retrier: threading.Thread | None = None
        self.client = self._make_client()

    def count(self, outcome: str, amount: int = 1) -> None:
        with self._lock:
            self.stats[outcome] += amount
        observability.incr("mqtt_messages_total", amount, outcome=outcome)

    def handle(self, topic: str, payload: bytes, token: str | None = None) -> dict:
        """Accept one message; returns what happened (never raises)."""
        close_old_connections()
        try:
            outcome = self._handle(topic, payload, token)
        except UNAVAILABLE_ERRORS as exc:
            log.warning("mqtt %s: not taken yet, %s unavailable", topic, exc.__class__.__name__)
            outcome = {"outcome": "unavailable", "retry_after_s": RETRY_AFTER_S}
        except Exception:
            log.exception("mqtt message on %s failed", topic)
            outcome = {"outcome": "error"}
        finally:
            close_old_connections()
        self.count(outcome["outcome"])
        return outcome

    def _handle(self, topic: str, payload: bytes, property_token: str | None) -> dict:
        try:
            route = mqtt.parse_topic(topic)
        except mqtt.PayloadError as exc:
            log.warning("mqtt %s: %s", topic, exc)
            return {"outcome": "malformed", "detail": str(exc)}
        if len(payload) > settings.WARDWISE["MAX_BODY_BYTES"]:
            log.warning("mqtt %s: payload of %d bytes is too large", topic, len(payload))
            return {"outcome": "malformed", "detail": "payload too large"}
        try:
            mapped = mqtt.to_batch(route.shape, payload)
        except mqtt.PayloadError as exc:
            log.warning("mqtt %s: %s", topic, exc)
            return {"outcome": "malformed", "detail": str(exc)}
        scanner = self._scanner(route.serial)
        presented = property_token or mapped.token or route.token
        if scanner is None or not self._authorised(scanner, presented):
            log.warning("mqtt %s: refused (unknown scanner or bad device token)", topic)
            return {"outcome": "unauthorised"}
        try:
            result = accept_rssi_batch(scanner, mapped.body)
        except EnvelopeError as exc:
            log.warning("mqtt %s: %s", topic, exc)
            return {"outcome": "malformed", "detail": str(exc)}
        except Overloaded as exc:
            return {"outcome": "overloaded", "detail": str(exc), "retry_after_s": exc.retry_after_s}
        result["rejected"] = mqtt.merge_rejections(mapped, result["rejected"])
        if result["rejected"]:
            self.count("readings_rejected", len(result["rejected"]))
            log.info(
                "mqtt %s: %d accepted, %d rejected (first: %s)",
                topic,
                result["accepted"],
                len(result["rejected"]),
                result["rejected"][0],
            )
        self.count("readings_accepted", result["accepted"])
        return {"outcome": "duplicate" if result["duplicate_batch"] else "accepted", **result}

    def _scanner(self, serial: str) -> Scanner | None:
        now = time.monotonic()
        cached = self._scanners.get(serial)
        if cached and cached[0] > now:
            return cached[1]
        scanner = Scanner.objects.filter(serial=serial, is_active=True).first()
        self._scanners[serial] = (now + CACHE_S, scanner)
        return scanner

    def _authorised(self, scanner: Scanner, presented: str | None) -> bool:
        if self.config.gateway_auth == AUTH_BROKER:
            return True
        if not presented:
            return False
        key = (scanner.serial, presented)
        now = time.monotonic()
        if self._tokens.get(key, 0.0) > now:
            return True
        token = verify_token(presented)
        if token is None or token.scanner_id != scanner.pk:
            return False
        self._tokens[key] = now + CACHE_S
        return True

    def _make_client(self) -> paho.Client:
        config = self.config
        client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=paho.MQTTv5,
        )
        if config.username:
            client.username_pw_set(config.username, config.password or None)
        if config.tls:
            client.tls_set(
                ca_certs=config.ca_file or None,
                certfile=config.cert_file or None,
                keyfile=config.key_file or None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.manual_ack_set(True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("mqtt broker refused the bridge: %s", reason_code)
            return
        client.subscribe([(topic, self.config.qos) for topic in self.config.topics])
        log.info(
            "mqtt bridge connected to %s:%s, subscribed to %s",
            self.config.host,
            self.config.port,
            ", ".join(self.config.topics),
        )
        self.count("connects")

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        """Ready only once the broker confirmed the subscriptions: a message published before
        that would not be routed to the bridge."""
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            log.error("mqtt broker refused the bridge's subscription: %s", refused)
            return
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        with self._deferred_changed:
            # The broker redelivers what this connection left unacknowledged.
            self._connection += 1
            self._deferred.clear()
        log.warning("mqtt bridge disconnected (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message) -> None:
        token = None
        properties = getattr(message, "properties", None)
        for name, value in getattr(properties, "UserProperty", None) or []:
            if name.lower() == "token":
                token = value
        if message.qos == 0:  # no acknowledgement, no redelivery: one try only
            if self.handle(message.topic, message.payload, token)["outcome"] in RETRY_LATER:
                log.warning("mqtt %s: QoS 0 message not taken; it is not retried", message.topic)
            return
        with self._deferred_changed:
            connection = self._connection
            if self._deferred:  # its turn comes after theirs
                self._deferred.append(Deferred(message, token, connection, 0.0))
                self._deferred_changed.notify()
                return
        wait = self._retry_after(self.handle(message.topic, message.payload, token))
        with self._deferred_changed:
            if wait is None:
                self._ack(message, connection)
            else:
                self._deferred.append(Deferred(message, token, connection, time.monotonic() + wait))
                self._deferred_changed.notify()

    @staticmethod
    def _retry_after(outcome: dict) -> float | None:
        """None when the message is decided (acknowledge it), else seconds until its next try."""
        if outcome["outcome"] in RETRY_LATER:
            return float(outcome["retry_after_s"])
        return None

    def _ack(self, message: paho.MQTTMessage, connection: int) -> None:
        """Acknowledge on the connection that delivered it (caller holds _deferred_changed)."""
        if connection == self._connection:
            self.client.ack(message.mid, message.qos)

    def _retry_deferred(self) -> None:
        """The retry thread: tries the oldest deferred message when due; acknowledges and drops
        it once decided, so the next one's turn comes."""
        while not self._stopping.is_set():
            with self._deferred_changed:
                head = self._deferred[0] if self._deferred else None
                wait = head.due - time.monotonic() if head else None
                if head is None or wait > 0:
                    self._deferred_changed.wait(wait)
                    continue
            message = head.message
            outcome = self.handle(message.topic, message.payload, head.token)
            retry_in = self._retry_after(outcome)
            with self._deferred_changed:
                if not self._deferred or self._deferred[0] is not head:
                    continue  # disconnected meanwhile: the broker redelivers it
                if retry_in is None:
                    self._ack(message, head.connection)
                    self._deferred.popleft()
                else:
                    head.due = time.monotonic() + retry_in

    @property
    def deferred(self) -> int:
        """Messages waiting, unacknowledged, for a retry."""
        with self._deferred_changed:
            return len(self._deferred)

    def start(self) -> None:
        """Connect and run the network loop in a background thread (returns at once)."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        self._stopping.clear()
        self._retrier = threading.Thread(
            target=self._retry_deferred, name="mqtt-bridge-retry", daemon=True
        )
        self._retrier.start()
        self.client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive,
            clean_start=False,
            properties=properties,
        )
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect; messages still deferred stay unacknowledged, so the broker keeps them for
        the next start (persistent session)."""
        self._stopping.set()
        with self._deferred_changed:
            self._deferred_changed.notify()
        if self._retrier is not None:
            self._retrier.join(timeout=30)
        self.client.disconnect()
        self.client.loop_stop()

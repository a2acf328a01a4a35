"""HTTP upload of spooled batches and heartbeats, with backoff, jitter and Retry-After.

Runs in its own thread with blocking stdlib I/O: the agent stays free of third-party HTTP
clients, and a slow server never stalls the BLE callback loop.
"""

import email.utils
import http.client
import json
import logging
import random
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

from scanners import __version__
from scanners.spool import Spool, Upload

log = logging.getLogger(__name__)

ENDPOINTS = {
    "rssi": "/api/v1/readings/rssi/",
    "environment": "/api/v1/readings/environment/",
}
HEARTBEAT_ENDPOINT = "/api/v1/scanners/heartbeat/"
AUTH_ALERT_REPEAT_S = 600.0
TOKEN_RECHECK_S = 30.0


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


class TransportError(Exception):
    """No HTTP answer at all: refused, timed out, TLS failure, DNS failure."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class HttpClient:
    def __init__(
        self,
        base_url: str,
        token_provider: Callable[[], str],
        ca_bundle: str | None = None,
        tls_verify: bool = True,
        timeout_s: float = 15.0,
    ):
        self.base_url = base_url.rstrip("/") + "/"
        self.token_provider = token_provider
        self.timeout_s = timeout_s
        self.ssl_context = ssl.create_default_context(cafile=ca_bundle)
        if not tls_verify:
            self.ssl_context.check_hostname = False
            self.ssl_context.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self.ssl_context)
        )

    def post_json(self, path: str, body: dict) -> HttpResponse:
        request = urllib.request.Request(  # noqa: S310 - scheme validated in config
            urljoin(self.base_url, path.lstrip("/")),
            data=json.dumps(body, separators=(",", ":")).encode(),
            method="POST",
            headers={
                "Authorization": f"Token {self.token_provider()}",
                "Content-Type": "application/json",
                "User-Agent": f"wardwise-scanner/{__version__}",
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return HttpResponse(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            with error:
                return HttpResponse(error.code, dict(error.headers or {}), error.read())
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, ssl.SSLError | ssl.CertificateError):
                raise TransportError("tls", str(reason)) from None
            if isinstance(reason, TimeoutError):
                raise TransportError("timeout", str(reason)) from None
            if isinstance(reason, ConnectionRefusedError):
                raise TransportError("refused", str(reason)) from None
            raise TransportError("network", str(reason)) from None
        except ssl.SSLError as error:
            raise TransportError("tls", str(error)) from None
        except TimeoutError as error:
            raise TransportError("timeout", str(error)) from None
        except (ConnectionError, OSError) as error:
            raise TransportError("network", str(error)) from None
        except http.client.HTTPException as error:
            raise TransportError("protocol", repr(error)) from None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - now)


def count_rejected(body, submitted: int) -> int:
    """Readings the server refused inside a 2xx answer, from `rejected` or from `accepted`."""
    if isinstance(body, dict):
        rejected = body.get("rejected")
        if isinstance(rejected, list):
            return len(rejected)
        accepted = body.get("accepted")
        if isinstance(accepted, int) and not isinstance(accepted, bool):
            return max(0, submitted - accepted)
    return 0


class Uploader:
    """Drains the spool oldest-first; `step()` does one attempt and says how long to wait.

    A request carries up to `max_upload_readings` readings and `max_upload_bytes` of them (below
    the server's defaults of 5,000 and 1 MiB), gathered from the spooled batches of one kind."""

    def __init__(
        self,
        spool: Spool,
        client: HttpClient,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 300.0,
        retry_after_max_s: float = 3600.0,
        token_fingerprint: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        max_upload_readings: int = 2000,
        max_upload_bytes: int = 512 * 1024,
    ):
        self.spool = spool
        self.client = client
        self.max_upload_readings = max_upload_readings
        self.max_upload_bytes = max_upload_bytes
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self.token_fingerprint = token_fingerprint or client.token_provider
        self.clock = clock
        self.rng = rng or random.Random()
        self.failures = 0
        self.auth_failed = False
        self.last_error: str | None = None
        self.last_success_ts: float | None = None
        self._rejected_token: str | None = None
        self._last_auth_alert = 0.0
        self.wake = threading.Event()

    def backoff_delay(self) -> float:
        """Exponential with 'equal jitter': never less than half the step, so retries spread out
        across a fleet of gateways without any of them hammering a recovering server."""
        step = min(self.backoff_max_s, self.backoff_base_s * 2 ** max(0, self.failures - 1))
        return step / 2 + self.rng.uniform(0, step / 2)

    def step(self) -> float:
        if self.auth_failed and not self._token_changed():
            self._alert_auth()
            return TOKEN_RECHECK_S
        upload = self.spool.next_upload(self.max_upload_readings, self.max_upload_bytes)
        if upload is None:
            return 1.0
        return self._send(upload)

    def _send(self, upload: Upload) -> float:
        self.spool.mark_attempt(*upload.seqs)
        envelope = {"batch": upload.upload_id, "readings": upload.readings}
        try:
            response = self.client.post_json(ENDPOINTS[upload.kind], envelope)
        except TransportError as error:
            return self._retry(f"{error.kind}: {error}", None)
        status = response.status
        if 200 <= status < 300:
            rejected = count_rejected(response.json(), upload.count)
            if rejected:
                self.spool.bump("rejected_readings", rejected)
                log.warning(
                    "server rejected %d of %d readings in batch %s: %s",
                    rejected,
                    upload.count,
                    upload.upload_id,
                    response.body[:500].decode(errors="replace"),
                )
            self.spool.remove(*upload.seqs)
            self.spool.bump("uploaded_readings", upload.count - rejected)
            self.spool.bump("uploaded_batches", len(upload.seqs))
            self.spool.bump("upload_requests", 1)
            self.failures = 0
            self.last_error = None
            self.last_success_ts = self.clock()
            return 0.0
        if status in (401, 403):
            self.auth_failed = True
            self._rejected_token = self.token_fingerprint()
            self.last_error = f"HTTP {status}: device token refused"
            self._last_auth_alert = 0.0
            self._alert_auth()
            return TOKEN_RECHECK_S
        if status == 429 or status == 503:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock())
            return self._retry(f"HTTP {status}", retry_after)
        if 400 <= status < 500 and status not in (408, 425):
            return self._refused(upload, status, response)
        return self._retry(f"HTTP {status}", None)

    def _refused(self, upload: Upload, status: int, response: HttpResponse) -> float:
        """A refusal stores nothing. Several batches sent together go again one by one, so a
        server with a lower size limit than ours, or one bad batch, costs no good batch."""
        reason = response.body[:500].decode(errors="replace")
        if upload.merged:
            self.spool.dissolve(upload)
            self.spool.bump("split_uploads", 1)
            log.warning(
                "server refused upload %s (%d batches, %d readings) with HTTP %d; sending its "
                "batches one by one: %s",
                upload.upload_id,
                len(upload.seqs),
                upload.count,
                status,
                reason,
            )
            return 0.0
        self.spool.remove(*upload.seqs, counter="poison_readings")
        self.spool.bump("poison_batches", 1)
        log.error(
            "server refused batch %s (%s, %d readings) with HTTP %d, dropping it: %s",
            upload.upload_id,
            upload.kind,
            upload.count,
            status,
            reason,
        )
        return 0.0

    def _retry(self, reason: str, retry_after: float | None) -> float:
        self.failures += 1
        self.last_error = reason
        if retry_after is not None:
            delay = min(retry_after, self.retry_after_max_s)
        else:
            delay = self.backoff_delay()
        log.warning("upload failed (%s); retry %d in %.1f s", reason, self.failures, delay)
        return delay

    def _token_changed(self) -> bool:
        try:
            current = self.token_fingerprint()
        except OSError:
            return False
        if current and current != self._rejected_token:
            log.warning("device token changed; resuming uploads")
            self.auth_failed = False
            self._rejected_token = None
            return True
        return False

    def _alert_auth(self) -> None:
        now = self.clock()
        if now - self._last_auth_alert >= AUTH_ALERT_REPEAT_S:
            self._last_auth_alert = now
            log.critical(
                "UPLOADS STOPPED: the server refused this gateway's device token (401). Readings "
                "keep spooling on disk. Issue a new token (manage.py scanner_token SERIAL) and "
                "write it to the configured token file; uploads resume by themselves."
            )

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop`; new batches cut an idle wait short, never a backoff wait."""
        while not stop.is_set():
            try:
                delay = self.step()
            except Exception:
                log.exception("uploader step failed")
                self.failures += 1
                delay = self.backoff_delay()
            if delay <= 0:
                continue
            if self.failures or self.auth_failed:
                stop.wait(delay)
            else:
                self.wake.wait(delay)
                self.wake.clear()

    def send_heartbeat(self, body: dict) -> int | None:
        """Best effort: a missed heartbeat is itself the signal, so it is never spooled."""
        if self.auth_failed:
            return None
        try:
            response = self.client.post_json(HEARTBEAT_ENDPOINT, body)
        except TransportError as error:
            log.info("heartbeat not delivered: %s", error)
            return None
        if response.status in (401, 403):
            log.error("heartbeat refused with HTTP %d (device token)", response.status)
        elif response.status >= 300:
            log.info("heartbeat answered HTTP %d", response.status)
        return response.status

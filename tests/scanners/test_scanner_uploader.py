"""Uploader against a real HTTP server on 127.0.0.1 that fails in each way the issue lists."""

import json
import logging
import random
import socket
import ssl
import subprocess
import threading

import pytest
from scanner_fakes import IngestServer, Scripted

from scanners.spool import Spool
from scanners.uploader import (
    HEARTBEAT_ENDPOINT,
    HttpClient,
    TransportError,
    Uploader,
    parse_retry_after,
)

RSSI = "/api/v1/readings/rssi/"
ENV = "/api/v1/readings/environment/"
TOKEN = "s3cret-device-token-value"


def reading(i: int = 0) -> dict:
    return {"tag": "mac:AA:BB:CC:DD:EE:FF", "rssi": -60 - i, "ts": "2026-11-24T08:00:00.123Z"}


@pytest.fixture
def server():
    with IngestServer() as running:
        yield running


@pytest.fixture
def spool(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite3")
    yield spool
    spool.close()


def make_uploader(spool, url, token=lambda: TOKEN, timeout_s=5.0, **kwargs):
    client = HttpClient(url, token, timeout_s=timeout_s)
    return Uploader(spool, client, backoff_base_s=1.0, rng=random.Random(1), **kwargs)


def test_202_uploads_with_envelope_and_token(server, spool):
    batch_id = spool.put("rssi", [reading(0), reading(1)])
    spool.put("environment", [{"sensor": "fridge-1", "ts": "t", "temperature_c": 4.5}])
    uploader = make_uploader(spool, server.url)
    assert uploader.step() == 0.0
    assert uploader.step() == 0.0
    (rssi,) = server.posted(RSSI)
    assert rssi["auth"] == f"Token {TOKEN}"
    assert rssi["body"] == {"batch": batch_id, "readings": [reading(0), reading(1)]}
    assert len(server.posted(ENV)) == 1
    assert spool.depth().batches == 0
    assert spool.counters()["uploaded_readings"] == 3


def test_rejected_readings_in_202_are_counted(server, spool):
    server.script(RSSI, Scripted(202, {"accepted": 1, "rejected": [{"index": 1, "reason": "x"}]}))
    spool.put("rssi", [reading(0), reading(1)])
    make_uploader(spool, server.url).step()
    assert spool.counters()["rejected_readings"] == 1
    assert spool.counters()["uploaded_readings"] == 1


def test_400_drops_the_poison_batch_and_goes_on(server, spool):
    server.script(RSSI, Scripted(400, {"error": "readings: not a list"}))
    spool.put("rssi", [reading(0)] * 3)
    spool.put("environment", [{"sensor": "fridge-1", "ts": "t", "temperature_c": 4.5}])
    uploader = make_uploader(spool, server.url)
    assert uploader.step() == 0.0
    assert uploader.step() == 0.0
    assert spool.depth().batches == 0
    counters = spool.counters()
    assert counters["poison_readings"] == 3
    assert counters["poison_batches"] == 1
    assert counters["uploaded_readings"] == 1


def drain(uploader, steps: int = 50) -> None:
    for _ in range(steps):
        if uploader.spool.depth().batches == 0:
            return
        uploader.step()
    raise AssertionError("the spool did not drain")


def test_a_backlog_goes_up_in_one_request_per_kind_in_order(server, spool):
    rssi_ids = []
    for second in range(5):
        rssi_ids.append(spool.put("rssi", [reading(second), reading(second + 10)]))
        if second % 2:
            fridge = {"sensor": "fridge-1", "ts": str(second), "temperature_c": 4}
            spool.put("environment", [fridge])
    drain(make_uploader(spool, server.url))
    (rssi,) = server.posted(RSSI)
    assert rssi["body"]["readings"] == [reading(i + j) for i in range(5) for j in (0, 10)]
    assert rssi["body"]["batch"] not in rssi_ids
    (environment,) = server.posted(ENV)
    assert [r["ts"] for r in environment["body"]["readings"]] == ["1", "3"]
    counters = spool.counters()
    assert counters["uploaded_batches"] == 7
    assert counters["upload_requests"] == 2
    assert counters["uploaded_readings"] == 12


def test_requests_stay_within_the_reading_and_byte_limits(server, spool):
    for second in range(7):
        spool.put("rssi", [reading(second), reading(second)])
    uploader = make_uploader(spool, server.url, max_upload_readings=5)
    drain(uploader)
    assert [len(r["body"]["readings"]) for r in server.posted(RSSI)] == [4, 4, 4, 2]
    one_batch_bytes = len(json.dumps([reading(0), reading(0)], separators=(",", ":")))
    spool.put("rssi", [reading(0), reading(0)])
    spool.put("rssi", [reading(0), reading(0)])
    drain(make_uploader(spool, server.url, max_upload_bytes=one_batch_bytes + 10))
    assert [len(r["body"]["readings"]) for r in server.posted(RSSI)[4:]] == [2, 2]


def test_a_batch_larger_than_the_limit_still_goes_alone(server, spool):
    spool.put("rssi", [reading(i) for i in range(8)])
    spool.put("rssi", [reading(0)])
    drain(make_uploader(spool, server.url, max_upload_readings=5))
    assert [len(r["body"]["readings"]) for r in server.posted(RSSI)] == [8, 1]


def test_a_merged_upload_refused_whole_goes_again_batch_by_batch(server, spool):
    """A refusal stores nothing, so each batch can go under its own id without loss or double
    counting: a server with a lower size limit than the agent's costs no reading."""
    server.script(RSSI, Scripted(400, {"error": "too many readings"}))
    ids = [spool.put("rssi", [reading(i)]) for i in range(3)]
    uploader = make_uploader(spool, server.url)
    drain(uploader)
    first, *others = server.posted(RSSI)
    assert len(first["body"]["readings"]) == 3
    assert [r["body"]["batch"] for r in others] == ids
    counters = spool.counters()
    assert counters["split_uploads"] == 1
    assert counters["uploaded_readings"] == 3
    assert "poison_readings" not in counters


def test_a_merged_upload_is_resent_whole_under_its_id_after_a_lost_202(server, spool):
    server.script(RSSI, Scripted(202, drop_connection=True))
    spool.put("rssi", [reading(0)])
    spool.put("rssi", [reading(1)])
    uploader = make_uploader(spool, server.url)
    assert uploader.step() > 0
    later = spool.put("rssi", [reading(2)])
    assert uploader.step() == 0.0
    assert uploader.step() == 0.0
    sent, resent, last = server.posted(RSSI)
    assert resent["body"] == sent["body"]
    assert len(sent["body"]["readings"]) == 2
    assert last["body"] == {"batch": later, "readings": [reading(2)]}


def test_a_batch_already_sent_alone_is_never_merged(spool):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    first = spool.put("rssi", [reading(0)])
    uploader = make_uploader(spool, f"http://127.0.0.1:{port}")
    assert uploader.step() > 0
    spool.put("rssi", [reading(1)])
    upload = spool.next_upload(max_readings=100, max_bytes=10_000)
    assert (upload.upload_id, upload.count) == (first, 1)


def test_401_stops_uploads_keeps_spool_and_resumes_on_new_token(server, spool, tmp_path, caplog):
    token_file = tmp_path / "token"
    token_file.write_text("revoked-token-abc\n")
    server.script(RSSI, Scripted(401, {"detail": "Invalid token."}))
    spool.put("rssi", [reading(0)])
    uploader = make_uploader(spool, server.url, token=lambda: token_file.read_text().strip())
    with caplog.at_level(logging.DEBUG):
        assert uploader.step() == 30.0
        assert uploader.auth_failed
        assert uploader.step() == 30.0
        spool.put("rssi", [reading(1)])
    assert len(server.posted(RSSI)) == 1
    assert spool.depth().batches == 2
    assert any(r.levelno == logging.CRITICAL and "401" in r.message for r in caplog.records)
    assert "revoked-token-abc" not in caplog.text
    token_file.write_text("fresh-token-xyz\n")
    assert uploader.step() == 0.0
    assert uploader.step() == 0.0
    assert spool.depth().batches == 0
    assert server.posted(RSSI)[-1]["auth"] == "Token fresh-token-xyz"


def test_429_retry_after_is_honoured(server, spool):
    server.script(RSSI, Scripted(429, headers={"Retry-After": "7"}))
    spool.put("rssi", [reading(0)])
    uploader = make_uploader(spool, server.url)
    assert uploader.step() == 7.0
    assert spool.depth().batches == 1
    assert uploader.step() == 0.0
    assert spool.depth().batches == 0


def test_503_with_and_without_retry_after(server, spool):
    server.script(RSSI, Scripted(503, headers={"Retry-After": "3"}), Scripted(503), Scripted(503))
    spool.put("rssi", [reading(0)])
    uploader = make_uploader(spool, server.url)
    assert uploader.step() == 3.0
    second = uploader.step()
    third = uploader.step()
    assert 1.0 <= second <= 2.0  # 2nd failure: step 2 s, equal jitter -> [1, 2]
    assert 2.0 <= third <= 4.0
    assert uploader.step() == 0.0


def test_backoff_grows_exponentially_with_jitter_and_caps(spool):
    uploader = Uploader(
        spool, HttpClient("http://127.0.0.1:9", lambda: TOKEN), 1.0, 60.0, rng=random.Random(5)
    )
    delays = []
    for failures in range(1, 12):
        uploader.failures = failures
        delays.append(uploader.backoff_delay())
    for failures, delay in enumerate(delays, start=1):
        step = min(60.0, 2 ** (failures - 1))
        assert step / 2 <= delay <= step
    assert len({round(d, 6) for d in delays}) == len(delays)


def test_500_is_retried_and_batch_kept(server, spool):
    server.script(RSSI, Scripted(500), Scripted(502))
    spool.put("rssi", [reading(0)])
    uploader = make_uploader(spool, server.url)
    assert uploader.step() > 0
    assert uploader.step() > 0
    assert uploader.step() == 0.0
    ids = {r["body"]["batch"] for r in server.posted(RSSI)}
    assert len(ids) == 1


def test_connection_refused_is_retried(spool):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spool.put("rssi", [reading(0)])
    uploader = make_uploader(spool, f"http://127.0.0.1:{port}")
    assert uploader.step() > 0
    assert uploader.last_error.startswith("refused")
    assert spool.depth().batches == 1


def test_timeout_is_retried(server, spool):
    server.script(RSSI, Scripted(202, delay_s=2.0))
    spool.put("rssi", [reading(0)])
    uploader = make_uploader(spool, server.url, timeout_s=0.5)
    assert uploader.step() > 0
    assert uploader.last_error.startswith("timeout")
    assert spool.depth().batches == 1


def test_lost_202_resend_carries_the_same_batch_id(server, spool):
    """The server stores the batch but the answer never arrives; the resend must be
    recognisable as the same batch (contract section 3)."""
    server.script(RSSI, Scripted(202, drop_connection=True))
    batch_id = spool.put("rssi", [reading(0)])
    uploader = make_uploader(spool, server.url)
    assert uploader.step() > 0
    assert uploader.step() == 0.0
    assert [r["body"]["batch"] for r in server.posted(RSSI)] == [batch_id, batch_id]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An HTTPS server with a self-signed certificate the default trust store does not know."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
                *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
                *("-addext", "subjectAltName=IP:127.0.0.1"),
            ],
            check=True,
            capture_output=True,
        )
    except (FileNotFoundError, subprocess.CalledProcessError) as error:
        pytest.skip(f"openssl unavailable: {error}")
    ingest = IngestServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    ingest.httpd.socket = context.wrap_socket(ingest.httpd.socket, server_side=True)
    with ingest:
        yield ingest, cert


def test_tls_untrusted_certificate_is_refused(tls_server, spool):
    ingest, _ = tls_server
    spool.put("rssi", [reading(0)])
    url = ingest.url.replace("http://", "https://")
    uploader = make_uploader(spool, url)
    assert uploader.step() > 0
    assert uploader.last_error.startswith("tls")
    assert spool.depth().batches == 1


def test_tls_with_ca_bundle_succeeds(tls_server, spool):
    ingest, cert = tls_server
    spool.put("rssi", [reading(0)])
    client = HttpClient(ingest.url.replace("http://", "https://"), lambda: TOKEN, str(cert))
    uploader = Uploader(spool, client)
    assert uploader.step() == 0.0


def test_retry_after_http_date():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", 1445412480.0) == 10.0
    assert parse_retry_after("garbage", 0.0) is None
    assert parse_retry_after(None, 0.0) is None


def test_heartbeat_posts_body(server, spool):
    uploader = make_uploader(spool, server.url)
    assert uploader.send_heartbeat({"agent_version": "x", "spool_depth": 0}) == 202
    (posted,) = server.posted(HEARTBEAT_ENDPOINT)
    assert posted["body"]["agent_version"] == "x"


def test_transport_error_classification_for_garbage_server(spool):
    """A peer that answers with non-HTTP bytes is a transport failure, never a crash."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"\x00\x01garbage\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = HttpClient(f"http://127.0.0.1:{listener.getsockname()[1]}", lambda: TOKEN)
    with pytest.raises(TransportError):
        client.post_json(RSSI, {"readings": []})
    listener.close()


def test_run_loop_drains_and_stops(server, spool):
    for i in range(5):
        spool.put("rssi", [reading(i)])
    uploader = make_uploader(spool, server.url)
    stop = threading.Event()
    thread = threading.Thread(target=uploader.run, args=(stop,))
    thread.start()
    for _ in range(100):
        if spool.depth().batches == 0:
            break
        threading.Event().wait(0.05)
    stop.set()
    uploader.wake.set()
    thread.join(5)
    assert not thread.is_alive()
    assert spool.depth().batches == 0

"""Test doubles that speak real protocols over real loopback sockets: an HTTP ingestion server
and an LLRP reader. The LLRP bytes are built here with struct, independently of scanners.llrp,
so a symmetric encoder/decoder bug cannot hide."""

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Scripted:
    status: int
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    delay_s: float = 0.0
    drop_connection: bool = False


class IngestServer:
    """Records every POST; answers from a per-path script, then with 202 once it runs out."""

    def __init__(self):
        self.requests: list[dict] = []
        self.scripts: dict[str, list[Scripted]] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                with outer.lock:
                    outer.requests.append(
                        {
                            "path": self.path,
                            "auth": self.headers.get("Authorization"),
                            "body": json.loads(raw),
                        }
                    )
                    script = outer.scripts.get(self.path) or []
                    answer = script.pop(0) if script else None
                if answer is None:
                    body = json.loads(raw)
                    count = len(body.get("readings", []))
                    answer = Scripted(202, {"accepted": count, "rejected": []})
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                if answer.drop_connection:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = json.dumps(answer.body or {}).encode()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def script(self, path: str, *answers: Scripted) -> None:
        with self.lock:
            self.scripts.setdefault(path, []).extend(answers)

    def posted(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- LLRP, built by hand from the LLRP 1.0.1 specification ----


def llrp_message(message_type: int, message_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">HII", (1 << 10) | message_type, 10 + len(payload), message_id) + payload


def llrp_tlv(param_type: int, body: bytes) -> bytes:
    return struct.pack(">HH", param_type, 4 + len(body)) + body


def llrp_status_ok() -> bytes:
    return llrp_tlv(287, struct.pack(">HH", 0, 0))


def connection_attempt_event(status: int = 0) -> bytes:
    timestamp = llrp_tlv(128, struct.pack(">Q", int(time.time() * 1e6)))
    return llrp_message(63, 0, llrp_tlv(246, timestamp + llrp_tlv(256, struct.pack(">H", status))))


def tag_report_epc96(epc: bytes, rssi: int, antenna: int, last_seen_us: int) -> bytes:
    body = (
        bytes([0x80 | 13])
        + epc
        + bytes([0x80 | 1])
        + struct.pack(">H", antenna)
        + bytes([0x80 | 6])
        + struct.pack(">b", rssi)
        + bytes([0x80 | 4])
        + struct.pack(">Q", last_seen_us)
        + bytes([0x80 | 8])
        + struct.pack(">H", 3)
    )
    return llrp_tlv(240, body)


def tag_report_epcdata(epc: bytes, rssi: int) -> bytes:
    epc_data = llrp_tlv(241, struct.pack(">H", len(epc) * 8) + epc)
    vendor_custom = llrp_tlv(1023, struct.pack(">II", 25882, 1) + b"\x00\x01")
    return llrp_tlv(240, epc_data + bytes([0x80 | 6]) + struct.pack(">b", rssi) + vendor_custom)


MALFORMED_TAG_REPORT = llrp_tlv(240, bytes([0x80 | 13]) + b"\x01\x02")  # EPC-96 cut short
UNKNOWN_TV_TAG_REPORT = llrp_tlv(240, bytes([0x80 | 99]) + b"\x00" * 4)

RESPONSES = {3: 13, 20: 30, 21: 31, 22: 32, 23: 33, 24: 34, 25: 35, 14: 4, 1: 11}


class FakeLlrpReader:
    """An LLRP reader on 127.0.0.1: handshake, answers with LLRPStatus success, and after
    START_ROSPEC sends a KEEPALIVE and one RO_ACCESS_REPORT per connection from `reports`."""

    def __init__(self, reports: list[bytes], drop_after_report: bool = False):
        self.reports = reports
        self.drop_after_report = drop_after_report
        self.received: list[tuple[int, int, bytes]] = []
        self.connections = 0
        self.keepalive_acks: list[int] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.sock.close()

    def _serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_exact(conn, size):
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError("client closed")
            data += chunk
        return data

    def _session(self, conn):
        with conn:
            conn.settimeout(10)
            conn.sendall(connection_attempt_event(0))
            try:
                while not self.stopped.is_set():
                    header = self._read_exact(conn, 10)
                    version_type, length, message_id = struct.unpack(">HII", header)
                    payload = self._read_exact(conn, length - 10)
                    message_type = version_type & 0x3FF
                    self.received.append((message_type, message_id, payload))
                    if message_type == 72:
                        self.keepalive_acks.append(message_id)
                        continue
                    if message_type in RESPONSES:
                        conn.sendall(
                            llrp_message(RESPONSES[message_type], message_id, llrp_status_ok())
                        )
                    if message_type == 14:
                        return
                    if message_type == 22:
                        conn.sendall(llrp_message(62, 4242))
                        report = b"".join(self.reports)
                        conn.sendall(llrp_message(61, 7, report))
                        if self.drop_after_report:
                            return
            except (ConnectionError, OSError):
                return

    def types_received(self) -> list[int]:
        return [message_type for message_type, _, _ in self.received]

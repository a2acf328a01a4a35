"""A small client for EPCglobal LLRP 1.0.1 (Low Level Reader Protocol, TCP port 5084).

Implements only what continuous inventory needs: SET_READER_CONFIG (keepalives),
DELETE/ADD/ENABLE/START_ROSPEC, RO_ACCESS_REPORT with TagReportData (EPC-96 or EPCData,
AntennaID, PeakRSSI, First/LastSeenTimestampUTC, TagSeenCount), KEEPALIVE/KEEPALIVE_ACK,
READER_EVENT_NOTIFICATION, ERROR_MESSAGE and CLOSE_CONNECTION. Section numbers below refer to
the LLRP 1.0.1 specification.
"""

import asyncio
import contextlib
import logging
import random
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from scanners.rfid import TagRead

log = logging.getLogger(__name__)

LLRP_VERSION = 1
HEADER = struct.Struct(">HII")  # rsvd(3) ver(3) type(10), length, message id
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class MessageType:
    GET_READER_CAPABILITIES = 1
    SET_READER_CONFIG = 3
    CLOSE_CONNECTION_RESPONSE = 4
    GET_READER_CAPABILITIES_RESPONSE = 11
    SET_READER_CONFIG_RESPONSE = 13
    CLOSE_CONNECTION = 14
    ADD_ROSPEC = 20
    DELETE_ROSPEC = 21
    START_ROSPEC = 22
    STOP_ROSPEC = 23
    ENABLE_ROSPEC = 24
    ADD_ROSPEC_RESPONSE = 30
    DELETE_ROSPEC_RESPONSE = 31
    START_ROSPEC_RESPONSE = 32
    STOP_ROSPEC_RESPONSE = 33
    ENABLE_ROSPEC_RESPONSE = 34
    RO_ACCESS_REPORT = 61
    KEEPALIVE = 62
    READER_EVENT_NOTIFICATION = 63
    KEEPALIVE_ACK = 72
    ERROR_MESSAGE = 100


class ParamType:
    EPC_96 = 13  # TV
    UTC_TIMESTAMP = 128
    ROSPEC = 177
    RO_BOUNDARY_SPEC = 178
    ROSPEC_START_TRIGGER = 179
    ROSPEC_STOP_TRIGGER = 182
    AI_SPEC = 183
    AI_SPEC_STOP_TRIGGER = 184
    INVENTORY_PARAMETER_SPEC = 186
    KEEPALIVE_SPEC = 220
    RO_REPORT_SPEC = 237
    TAG_REPORT_CONTENT_SELECTOR = 238
    TAG_REPORT_DATA = 240
    EPC_DATA = 241
    READER_EVENT_NOTIFICATION_DATA = 246
    CONNECTION_ATTEMPT_EVENT = 256
    CONNECTION_CLOSE_EVENT = 257
    LLRP_STATUS = 287


# TV-encoded parameters (section 4.1.2): type -> value length in bytes.
TV_LENGTHS = {
    1: 2,  # AntennaID
    2: 8,  # FirstSeenTimestampUTC (microseconds since the Unix epoch)
    3: 8,  # FirstSeenTimestampUptime
    4: 8,  # LastSeenTimestampUTC
    5: 8,  # LastSeenTimestampUptime
    6: 1,  # PeakRSSI (signed dBm)
    7: 2,  # ChannelIndex
    8: 2,  # TagSeenCount
    9: 4,  # ROSpecID
    10: 2,  # InventoryParameterSpecID
    11: 2,  # C1G2-CRC
    12: 2,  # C1G2-PC
    13: 12,  # EPC-96
    14: 2,  # SpecIndex
    15: 2,  # ClientRequestOpSpecResult
    16: 4,  # AccessSpecID
    17: 2,  # OpSpecID
    18: 4,  # C1G2SingulationDetails
    19: 2,  # C1G2-XPCW1
    20: 2,  # C1G2-XPCW2
}

_RESPONSE_TO = {
    MessageType.SET_READER_CONFIG: MessageType.SET_READER_CONFIG_RESPONSE,
    MessageType.ADD_ROSPEC: MessageType.ADD_ROSPEC_RESPONSE,
    MessageType.DELETE_ROSPEC: MessageType.DELETE_ROSPEC_RESPONSE,
    MessageType.START_ROSPEC: MessageType.START_ROSPEC_RESPONSE,
    MessageType.STOP_ROSPEC: MessageType.STOP_ROSPEC_RESPONSE,
    MessageType.ENABLE_ROSPEC: MessageType.ENABLE_ROSPEC_RESPONSE,
    MessageType.CLOSE_CONNECTION: MessageType.CLOSE_CONNECTION_RESPONSE,
    MessageType.GET_READER_CAPABILITIES: MessageType.GET_READER_CAPABILITIES_RESPONSE,
}


class LlrpError(Exception):
    pass


_SESSION_ERRORS = (OSError, LlrpError, asyncio.IncompleteReadError, TimeoutError, struct.error)


@dataclass(frozen=True)
class Message:
    type: int
    message_id: int
    payload: bytes


def encode_message(message_type: int, message_id: int, payload: bytes = b"") -> bytes:
    return (
        HEADER.pack((LLRP_VERSION << 10) | message_type, HEADER.size + len(payload), message_id)
        + payload
    )


def tlv(param_type: int, body: bytes = b"") -> bytes:
    return struct.pack(">HH", param_type, 4 + len(body)) + body


def iter_params(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, value) for each TLV or TV parameter; raises LlrpError on a truncated one."""
    offset = 0
    while offset < len(data):
        first = data[offset]
        if first & 0x80:
            param_type = first & 0x7F
            length = TV_LENGTHS.get(param_type)
            if length is None:
                raise LlrpError(f"unknown TV parameter {param_type}")
            value = data[offset + 1 : offset + 1 + length]
            if len(value) < length:
                raise LlrpError(f"truncated TV parameter {param_type}")
            yield param_type, value
            offset += 1 + length
            continue
        if offset + 4 > len(data):
            raise LlrpError("truncated parameter header")
        param_type, length = struct.unpack_from(">HH", data, offset)
        param_type &= 0x3FF
        if length < 4 or offset + length > len(data):
            raise LlrpError(f"bad length {length} for parameter {param_type}")
        yield param_type, data[offset + 4 : offset + length]
        offset += length


def decode_status(payload: bytes) -> tuple[int, str]:
    """The LLRPStatus parameter that opens every response and ERROR_MESSAGE (section 14.2.2)."""
    for param_type, value in iter_params(payload):
        if param_type == ParamType.LLRP_STATUS and len(value) >= 4:
            code, description_length = struct.unpack_from(">HH", value)
            return code, value[4 : 4 + description_length].decode(errors="replace")
    raise LlrpError("response without LLRPStatus")


def decode_tag_report_data(value: bytes, now: float) -> TagRead:
    epc = None
    rssi = None
    antenna = None
    first_seen = last_seen = None
    seen_count = 1
    for param_type, body in iter_params(value):
        if param_type == ParamType.EPC_96:
            epc = body
        elif param_type == ParamType.EPC_DATA:
            if len(body) < 2:
                raise LlrpError("EPCData without length")
            bits = struct.unpack_from(">H", body)[0]
            epc = body[2 : 2 + (bits + 7) // 8]
            if len(epc) * 8 < bits:
                raise LlrpError("truncated EPCData")
        elif param_type == 1:
            antenna = struct.unpack(">H", body)[0]
        elif param_type == 6:
            rssi = struct.unpack(">b", body)[0]
        elif param_type == 2:
            first_seen = struct.unpack(">Q", body)[0] / 1e6
        elif param_type == 4:
            last_seen = struct.unpack(">Q", body)[0] / 1e6
        elif param_type == 8:
            seen_count = struct.unpack(">H", body)[0]
    if not epc:
        raise LlrpError("TagReportData without EPC")
    return TagRead(epc, rssi, last_seen or first_seen or now, antenna, seen_count)


def decode_ro_access_report(payload: bytes, now: float, malformed: Counter) -> list[TagRead]:
    """Each TagReportData on its own: a bad one is counted and skipped, the others are kept."""
    reads = []
    for param_type, value in iter_params(payload):
        if param_type != ParamType.TAG_REPORT_DATA:
            continue
        try:
            reads.append(decode_tag_report_data(value, now))
        except (LlrpError, struct.error) as error:
            malformed["tag_report_data"] += 1
            log.debug("skipping malformed TagReportData: %s", error)
    return reads


def set_reader_config_keepalive(keepalive_ms: int) -> bytes:
    """SET_READER_CONFIG (16.1.5): no factory reset, periodic KeepaliveSpec so a dead link shows."""
    return b"\x00" + tlv(ParamType.KEEPALIVE_SPEC, struct.pack(">BI", 1, keepalive_ms))


def rospec(rospec_id: int, antennas: list[int], report_every_n_tags: int) -> bytes:
    """ROSpec (17.2.4.1) for endless inventory: null start/stop triggers, started explicitly by
    START_ROSPEC, all listed antennas (0 = all), Gen2 protocol, report every N tags."""
    boundary = tlv(
        ParamType.RO_BOUNDARY_SPEC,
        tlv(ParamType.ROSPEC_START_TRIGGER, b"\x00")
        + tlv(ParamType.ROSPEC_STOP_TRIGGER, struct.pack(">BI", 0, 0)),
    )
    ai_spec = tlv(
        ParamType.AI_SPEC,
        struct.pack(f">H{len(antennas)}H", len(antennas), *antennas)
        + tlv(ParamType.AI_SPEC_STOP_TRIGGER, struct.pack(">BI", 0, 0))
        + tlv(ParamType.INVENTORY_PARAMETER_SPEC, struct.pack(">HB", 1, 1)),
    )
    # TagReportContentSelector bits, MSB first: ROSpecID, SpecIndex, InventoryParameterSpecID,
    # AntennaID, ChannelIndex, PeakRSSI, FirstSeen, LastSeen, TagSeenCount, AccessSpecID.
    selector = (1 << 12) | (1 << 10) | (1 << 9) | (1 << 8) | (1 << 7)
    report = tlv(
        ParamType.RO_REPORT_SPEC,
        struct.pack(">BH", 2, report_every_n_tags)
        + tlv(ParamType.TAG_REPORT_CONTENT_SELECTOR, struct.pack(">H", selector)),
    )
    return tlv(ParamType.ROSPEC, struct.pack(">IBB", rospec_id, 0, 0) + boundary + ai_spec + report)


async def read_message(reader: asyncio.StreamReader) -> Message:
    header = await reader.readexactly(HEADER.size)
    version_type, length, message_id = HEADER.unpack(header)
    if length < HEADER.size or length > MAX_MESSAGE_BYTES:
        raise LlrpError(f"implausible message length {length}")
    payload = await reader.readexactly(length - HEADER.size)
    return Message(version_type & 0x3FF, message_id, payload)


class LlrpReader:
    """Keeps one LLRP reader inventorying and forwards every tag read; reconnects forever."""

    def __init__(
        self,
        host: str,
        port: int = 5084,
        antennas: list[int] | None = None,
        keepalive_s: float = 10.0,
        report_every_n_tags: int = 1,
        reconnect_max_s: float = 60.0,
        connect_timeout_s: float = 10.0,
        rospec_id: int = 1,
    ):
        self.host = host
        self.port = port
        self.antennas = antennas or [0]
        self.keepalive_s = keepalive_s
        self.report_every_n_tags = report_every_n_tags
        self.reconnect_max_s = reconnect_max_s
        self.connect_timeout_s = connect_timeout_s
        self.rospec_id = rospec_id
        self.status = "disconnected"
        self.counters: Counter = Counter()
        self._next_id = 0
        self._writer: asyncio.StreamWriter | None = None

    def stats(self) -> dict[str, int]:
        return dict(self.counters)

    async def run(self, on_read: Callable[[TagRead], None]) -> None:
        failures = 0
        while True:
            try:
                await self.session(on_read)
                failures = 0
            except _SESSION_ERRORS as error:
                failures += 1
                self.counters["connection_failures"] += 1
                if isinstance(error, asyncio.IncompleteReadError):
                    error = LlrpError("connection closed by the reader")
                log.warning("LLRP reader %s:%d: %s", self.host, self.port, error or type(error))
            finally:
                self.status = "disconnected"
            delay = min(self.reconnect_max_s, 0.5 * 2**failures)
            await asyncio.sleep(delay / 2 + random.uniform(0, delay / 2))

    async def session(self, on_read: Callable[[TagRead], None]) -> None:
        """One connection: configure, inventory until the link fails or the reader closes it."""
        self.status = "connecting"
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.connect_timeout_s
        )
        self._writer = writer
        try:
            await self._await_connection_event(reader)
            keepalive_ms = int(self.keepalive_s * 1000)
            await self._transact(
                reader,
                on_read,
                MessageType.SET_READER_CONFIG,
                set_reader_config_keepalive(keepalive_ms),
            )
            await self._transact(
                reader, on_read, MessageType.DELETE_ROSPEC, struct.pack(">I", 0), must_succeed=False
            )
            spec = rospec(self.rospec_id, self.antennas, self.report_every_n_tags)
            await self._transact(reader, on_read, MessageType.ADD_ROSPEC, spec)
            rospec_id = struct.pack(">I", self.rospec_id)
            await self._transact(reader, on_read, MessageType.ENABLE_ROSPEC, rospec_id)
            await self._transact(reader, on_read, MessageType.START_ROSPEC, rospec_id)
            self.status = "inventorying"
            self.counters["sessions"] += 1
            log.info("LLRP reader %s:%d inventorying", self.host, self.port)
            while True:
                message = await asyncio.wait_for(read_message(reader), self.keepalive_s * 3)
                if not await self._dispatch(message, on_read):
                    return
        finally:
            await self._close(writer)

    async def _await_connection_event(self, reader: asyncio.StreamReader) -> None:
        """Section 13: the reader opens with READER_EVENT_NOTIFICATION ConnectionAttemptEvent."""
        message = await asyncio.wait_for(read_message(reader), self.connect_timeout_s)
        if message.type != MessageType.READER_EVENT_NOTIFICATION:
            raise LlrpError(f"expected READER_EVENT_NOTIFICATION, got type {message.type}")
        status = self._connection_attempt_status(message.payload)
        if status != 0:
            raise LlrpError(f"reader refused the connection (ConnectionAttemptEvent {status})")

    @staticmethod
    def _connection_attempt_status(payload: bytes) -> int | None:
        for param_type, value in iter_params(payload):
            if param_type != ParamType.READER_EVENT_NOTIFICATION_DATA:
                continue
            for event_type, event in iter_params(value):
                if event_type == ParamType.CONNECTION_ATTEMPT_EVENT and len(event) >= 2:
                    return struct.unpack(">H", event[:2])[0]
        return None

    async def _send(self, message_type: int, payload: bytes = b"", message_id=None) -> int:
        if message_id is None:
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF
            message_id = self._next_id
        if self._writer is None:
            raise ConnectionError("LLRP reader is not connected")
        self._writer.write(encode_message(message_type, message_id, payload))
        await self._writer.drain()
        return message_id

    async def _transact(
        self,
        reader: asyncio.StreamReader,
        on_read: Callable[[TagRead], None],
        message_type: int,
        payload: bytes,
        must_succeed: bool = True,
    ) -> None:
        message_id = await self._send(message_type, payload)
        expected = _RESPONSE_TO[message_type]
        while True:
            message = await asyncio.wait_for(read_message(reader), self.connect_timeout_s)
            if message.type == expected and message.message_id == message_id:
                code, description = decode_status(message.payload)
                if code != 0 and must_succeed:
                    raise LlrpError(f"message type {message_type} failed: {code} {description}")
                return
            if message.type == MessageType.ERROR_MESSAGE:
                code, description = decode_status(message.payload)
                raise LlrpError(f"reader error {code}: {description}")
            if not await self._dispatch(message, on_read):
                raise LlrpError("reader closed the connection during setup")

    async def _dispatch(self, message: Message, on_read: Callable[[TagRead], None]) -> bool:
        """Handle an unsolicited message; False when the reader is closing the connection."""
        if message.type == MessageType.KEEPALIVE:
            self.counters["keepalives"] += 1
            await self._send(MessageType.KEEPALIVE_ACK, message_id=message.message_id)
        elif message.type == MessageType.RO_ACCESS_REPORT:
            self.counters["reports"] += 1
            try:
                reads = decode_ro_access_report(message.payload, time.time(), self.counters)
            except (LlrpError, struct.error) as error:
                self.counters["malformed_reports"] += 1
                log.warning("skipping malformed RO_ACCESS_REPORT: %s", error)
                return True
            for read in reads:
                self.counters["tag_reads"] += 1
                on_read(read)
        elif message.type == MessageType.READER_EVENT_NOTIFICATION:
            self.counters["events"] += 1
            if self._is_close_event(message.payload):
                log.warning("LLRP reader %s:%d announced it is closing", self.host, self.port)
                return False
        elif message.type == MessageType.ERROR_MESSAGE:
            code, description = decode_status(message.payload)
            log.warning("LLRP reader error %d: %s", code, description)
        return True

    @staticmethod
    def _is_close_event(payload: bytes) -> bool:
        try:
            for param_type, value in iter_params(payload):
                if param_type == ParamType.READER_EVENT_NOTIFICATION_DATA:
                    return any(
                        event_type == ParamType.CONNECTION_CLOSE_EVENT
                        for event_type, _ in iter_params(value)
                    )
        except LlrpError:
            return False
        return False

    async def _close(self, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, TimeoutError):
            if not writer.is_closing():
                writer.write(encode_message(MessageType.CLOSE_CONNECTION, 0))
                await asyncio.wait_for(writer.drain(), 1.0)
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        self._writer = None

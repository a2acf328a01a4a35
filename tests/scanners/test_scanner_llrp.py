"""LLRP client against a fake reader speaking LLRP over a real TCP socket on 127.0.0.1."""

import asyncio
import struct

import pytest
from scanner_fakes import (
    MALFORMED_TAG_REPORT,
    UNKNOWN_TV_TAG_REPORT,
    FakeLlrpReader,
    tag_report_epc96,
    tag_report_epcdata,
)

from scanners import llrp
from scanners.llrp import LlrpReader, MessageType

EPC96 = bytes.fromhex("3034257bf7194e4000001a85")
EPC128 = bytes.fromhex("e28011606000020a1b2c3d4e5f607182")
SEEN_US = 1_795_939_200_123_456


async def collect(reader: LlrpReader, want: int, timeout: float = 10.0) -> list:
    reads = []
    done = asyncio.Event()

    def on_read(read):
        reads.append(read)
        if len(reads) >= want:
            done.set()

    task = asyncio.create_task(reader.run(on_read))
    try:
        await asyncio.wait_for(done.wait(), timeout)
        await asyncio.sleep(0.2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return reads


def test_inventory_handshake_reports_and_keepalive():
    reports = [
        tag_report_epc96(EPC96, -52, 2, SEEN_US),
        MALFORMED_TAG_REPORT,
        UNKNOWN_TV_TAG_REPORT,
        tag_report_epcdata(EPC128, -71),
    ]
    with FakeLlrpReader(reports) as fake:
        reader = LlrpReader("127.0.0.1", fake.port, keepalive_s=5)
        reads = asyncio.run(collect(reader, 2))
        types = fake.types_received()
    assert types[:5] == [
        MessageType.SET_READER_CONFIG,
        MessageType.DELETE_ROSPEC,
        MessageType.ADD_ROSPEC,
        MessageType.ENABLE_ROSPEC,
        MessageType.START_ROSPEC,
    ]
    assert fake.keepalive_acks == [4242]
    first, second = reads
    assert (first.epc, first.rssi, first.antenna, first.seen_count) == (EPC96, -52, 2, 3)
    assert first.ts == SEEN_US / 1e6
    assert (second.epc, second.rssi) == (EPC128, -71)
    assert reader.counters["tag_report_data"] == 2
    assert reader.counters["tag_reads"] == 2


def test_add_rospec_bytes_follow_the_specification():
    with FakeLlrpReader([tag_report_epc96(EPC96, -50, 1, SEEN_US)]) as fake:
        asyncio.run(collect(LlrpReader("127.0.0.1", fake.port, antennas=[1, 2]), 1))
        add = next(payload for kind, _, payload in fake.received if kind == MessageType.ADD_ROSPEC)
        keepalive = next(p for kind, _, p in fake.received if kind == MessageType.SET_READER_CONFIG)
    param_type, length, rospec_id, priority, state = struct.unpack(">HHIBB", add[:10])
    assert (param_type, length, rospec_id, priority, state) == (177, len(add), 1, 0, 0)
    assert b"\x00\xb7" in add  # AISpec (183)
    ai_spec_at = add.index(b"\x00\xb7")
    assert struct.unpack(">HHH", add[ai_spec_at + 4 : ai_spec_at + 10]) == (2, 1, 2)
    # SET_READER_CONFIG: no reset, KeepaliveSpec(220) periodic 10000 ms
    assert keepalive == b"\x00" + struct.pack(">HHBI", 220, 9, 1, 10000)


def test_reconnects_after_the_reader_drops_the_connection():
    with FakeLlrpReader([tag_report_epc96(EPC96, -60, 1, SEEN_US)], drop_after_report=True) as fake:
        reader = LlrpReader("127.0.0.1", fake.port, reconnect_max_s=0.2)
        reads = asyncio.run(collect(reader, 3))
        connections = fake.connections
    assert len(reads) >= 3
    assert connections >= 3
    assert reader.counters["connection_failures"] >= 2


def test_refused_connection_event_is_an_error():
    async def scenario(port):
        server = await asyncio.start_server(refuse, "127.0.0.1", port)
        async with server:
            reader = LlrpReader("127.0.0.1", server.sockets[0].getsockname()[1])
            with pytest.raises(llrp.LlrpError, match="refused"):
                await reader.session(lambda read: None)

    async def refuse(_reader, writer):
        from scanner_fakes import connection_attempt_event

        writer.write(connection_attempt_event(status=2))
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()

    asyncio.run(scenario(0))


def test_truncated_parameters_raise_llrp_error():
    with pytest.raises(llrp.LlrpError):
        list(llrp.iter_params(b"\x00\xf0\x00\x10\x00"))
    with pytest.raises(llrp.LlrpError):
        list(llrp.iter_params(bytes([0x80 | 13]) + b"\x01"))
    with pytest.raises(llrp.LlrpError):
        llrp.decode_status(b"")

"""Canonical tag id strings, as the contract (section 1) defines them."""

import re
import uuid

_HEX = re.compile(r"^[0-9a-f]+$")


def ibeacon_id(proximity_uuid: bytes, major: int, minor: int) -> str:
    return f"ibeacon:{uuid.UUID(bytes=proximity_uuid)}:{major}:{minor}"


def eddystone_id(namespace: bytes, instance: bytes) -> str:
    return f"eddystone:{namespace.hex()}:{instance.hex()}"


def mac_id(address: str) -> str:
    return f"mac:{normalize_mac(address)}"


def rfid_id(epc: bytes) -> str:
    return f"rfid:{epc.hex()}"


def normalize_mac(address: str) -> str:
    """Upper-case colon form; accepts '-' separators and bare hex."""
    digits = re.sub(r"[^0-9A-Fa-f]", "", address).upper()
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))


def normalize_hex(value: str) -> str:
    cleaned = value.strip().lower().removeprefix("0x").replace("-", "").replace(":", "")
    if cleaned and not _HEX.match(cleaned):
        raise ValueError(f"not a hex string: {value!r}")
    return cleaned


def normalize_uuid(value: str) -> str:
    return str(uuid.UUID(value.strip()))

"""Tag id strings: parse case-insensitively, store one canonical form (contract section 1).

Pure Python so the HTTP ingestion, the site loader, the replay command and the localization
engine all agree on what "the same tag" means.

Canonical forms:

- ``ibeacon:<uuid>:<major>:<minor>``: lower-case hyphenated uuid, major/minor as plain decimal
  integers 0..65535 (leading zeros dropped).
- ``eddystone:<namespace>:<instance>``: 10-byte namespace and 6-byte instance, lower-case hex.
- ``mac:<AA:BB:CC:DD:EE:FF>``: upper-case, colon separated (``-`` separators are accepted).
- ``rfid:<EPC>``: lower-case hex, whole bytes, 8 to 124 hex digits (4 to 62 bytes).
"""

from __future__ import annotations

import re
import uuid
from functools import lru_cache

TAG_KINDS = ("ibeacon", "eddystone", "mac", "rfid")

_HEX = re.compile(r"^[0-9a-f]+$")
_MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")


def _ibeacon(body: str) -> str:
    parts = body.split(":")
    if len(parts) != 3:
        raise ValueError("ibeacon id must be ibeacon:<uuid>:<major>:<minor>")
    raw_uuid, major, minor = parts
    try:
        parsed = uuid.UUID(raw_uuid)
    except ValueError:
        raise ValueError(f"ibeacon uuid {raw_uuid!r} is not a valid UUID") from None
    numbers = []
    for label, value in (("major", major), ("minor", minor)):
        if not value.isdigit() or not 0 <= int(value) <= 65535:
            raise ValueError(f"ibeacon {label} {value!r} must be an integer 0..65535")
        numbers.append(int(value))
    return f"ibeacon:{parsed}:{numbers[0]}:{numbers[1]}"


def _eddystone(body: str) -> str:
    parts = body.split(":")
    if len(parts) != 2:
        raise ValueError("eddystone id must be eddystone:<namespace-hex>:<instance-hex>")
    namespace, instance = parts
    if len(namespace) != 20 or not _HEX.match(namespace):
        raise ValueError(f"eddystone namespace {namespace!r} must be 20 hex digits")
    if len(instance) != 12 or not _HEX.match(instance):
        raise ValueError(f"eddystone instance {instance!r} must be 12 hex digits")
    return f"eddystone:{namespace}:{instance}"


def _mac(body: str) -> str:
    if not _MAC.match(body):
        raise ValueError(f"mac {body!r} must be six hex bytes like AA:BB:CC:DD:EE:FF")
    return "mac:" + body.replace("-", ":").upper()


def _rfid(body: str) -> str:
    if not body or not _HEX.match(body):
        raise ValueError(f"rfid EPC {body!r} must be hex digits")
    if len(body) % 2 or not 8 <= len(body) <= 124:
        raise ValueError(f"rfid EPC {body!r} must be whole bytes, 8 to 124 hex digits")
    return f"rfid:{body}"


_PARSERS = {"ibeacon": _ibeacon, "eddystone": _eddystone, "mac": _mac, "rfid": _rfid}


def canonical_tag_id(text: str) -> str:
    """The canonical form of a tag id string; ValueError with the reason when it is malformed."""
    if not isinstance(text, str):
        raise ValueError(f"tag id must be a string, not {type(text).__name__}")
    return _canonical(text)


@lru_cache(maxsize=65_536)
def _canonical(text: str) -> str:
    """Memoised: a gateway reports the same few hundred tags every second."""
    cleaned = text.strip().lower()
    kind, separator, body = cleaned.partition(":")
    if not separator:
        raise ValueError(f"tag id {text!r} must start with one of {', '.join(TAG_KINDS)} and ':'")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ValueError(f"unknown tag kind {kind!r}; expected one of {', '.join(TAG_KINDS)}")
    return parser(body)


def is_valid_tag_id(text: str) -> bool:
    try:
        canonical_tag_id(text)
    except ValueError:
        return False
    return True

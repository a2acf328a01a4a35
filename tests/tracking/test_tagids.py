import pytest

from tracking.tagids import canonical_tag_id, is_valid_tag_id

UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (f"ibeacon:{UUID}:1:1", f"ibeacon:{UUID}:1:1"),
        (f"IBEACON:{UUID.upper()}:0001:65535", f"ibeacon:{UUID}:1:65535"),
        (f"  ibeacon:{UUID}:7:8  ", f"ibeacon:{UUID}:7:8"),
        (
            "eddystone:EDD1EBEAC04E5DEFA017:0BDB87539B67",
            "eddystone:edd1ebeac04e5defa017:0bdb87539b67",
        ),
        ("mac:aa:bb:cc:dd:ee:ff", "mac:AA:BB:CC:DD:EE:FF"),
        ("MAC:aa-bb-cc-dd-ee-0f", "mac:AA:BB:CC:DD:EE:0F"),
        ("rfid:E2003412DC03011812345678", "rfid:e2003412dc03011812345678"),
    ],
)
def test_valid_ids_parse_to_their_canonical_form(text, canonical):
    assert canonical_tag_id(text) == canonical


def test_canonical_form_is_a_fixed_point():
    once = canonical_tag_id(f"IBEACON:{UUID.upper()}:01:02")
    assert canonical_tag_id(once) == once


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "must start with"),
        ("f7826da6", "must start with"),
        ("bluetooth:aa", "unknown tag kind"),
        (f"ibeacon:{UUID}:1", "ibeacon:<uuid>:<major>:<minor>"),
        ("ibeacon:not-a-uuid:1:1", "not a valid UUID"),
        (f"ibeacon:{UUID}:65536:1", "major"),
        (f"ibeacon:{UUID}:1:-1", "minor"),
        ("eddystone:edd1ebeac04e5defa0:0bdb87539b67", "namespace"),
        ("eddystone:edd1ebeac04e5defa017:0bdb8753", "instance"),
        ("mac:aa:bb:cc:dd:ee", "six hex bytes"),
        ("mac:gg:bb:cc:dd:ee:ff", "six hex bytes"),
        ("rfid:e20", "whole bytes"),
        ("rfid:xyz0", "hex digits"),
        ("rfid:", "hex digits"),
    ],
)
def test_malformed_ids_raise_value_error_saying_why(text, reason):
    with pytest.raises(ValueError, match=reason):
        canonical_tag_id(text)


def test_non_string_is_rejected():
    with pytest.raises(ValueError, match="must be a string"):
        canonical_tag_id(None)


def test_is_valid_tag_id():
    assert is_valid_tag_id("mac:AA:BB:CC:DD:EE:FF")
    assert not is_valid_tag_id("mac:AA")

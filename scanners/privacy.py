"""Allow-list filter: only tags the hospital registered may leave the gateway.

Phones, wearables and visitors' devices advertise all the time; uploading them would track
people without consent. The filter therefore denies by default: with empty lists nothing passes.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from scanners import tagids

ANY_EPC = "*"


@dataclass(frozen=True)
class TagFilter:
    ibeacon_uuids: frozenset[str] = frozenset()
    eddystone_namespaces: frozenset[str] = frozenset()
    mac_prefixes: tuple[str, ...] = ()
    epc_prefixes: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        ibeacon_uuids: Iterable[str] = (),
        eddystone_namespaces: Iterable[str] = (),
        mac_prefixes: Iterable[str] = (),
        epc_prefixes: Iterable[str] = (),
    ) -> "TagFilter":
        """Normalise operator input; an empty MAC prefix would match every phone, so refuse it."""
        macs = tuple(tagids.normalize_mac(prefix) for prefix in mac_prefixes)
        if any(not prefix for prefix in macs):
            raise ValueError("an empty MAC prefix would upload every device; list real prefixes")
        epcs = tuple(
            ANY_EPC if prefix.strip() == ANY_EPC else tagids.normalize_hex(prefix)
            for prefix in epc_prefixes
        )
        if any(not prefix for prefix in epcs):
            raise ValueError('an empty EPC prefix is ambiguous; use "*" to accept every EPC')
        return cls(
            ibeacon_uuids=frozenset(tagids.normalize_uuid(value) for value in ibeacon_uuids),
            eddystone_namespaces=frozenset(
                tagids.normalize_hex(value) for value in eddystone_namespaces
            ),
            mac_prefixes=macs,
            epc_prefixes=epcs,
        )

    def allows(self, tag_id: str) -> bool:
        scheme, _, rest = tag_id.partition(":")
        if scheme == "ibeacon":
            return rest[:36] in self.ibeacon_uuids
        if scheme == "eddystone":
            return rest.partition(":")[0] in self.eddystone_namespaces
        if scheme == "mac":
            return self.allows_mac(rest)
        if scheme == "rfid":
            return any(prefix == ANY_EPC or rest.startswith(prefix) for prefix in self.epc_prefixes)
        return False

    def allows_mac(self, address: str) -> bool:
        normalized = tagids.normalize_mac(address)
        return any(normalized.startswith(prefix) for prefix in self.mac_prefixes)

    @property
    def is_empty(self) -> bool:
        return not any(
            (self.ibeacon_uuids, self.eddystone_namespaces, self.mac_prefixes, self.epc_prefixes)
        )

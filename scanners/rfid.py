"""RFID reader adapter interface: anything that reports tag reads can feed the agent."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TagRead:
    epc: bytes
    rssi: float | None
    ts: float
    antenna: int | None = None
    seen_count: int = 1


class RfidReader(Protocol):
    """A reader connection that keeps itself alive: `run` reconnects on its own until cancelled."""

    status: str

    async def run(self, on_read: Callable[[TagRead], None]) -> None: ...

    def stats(self) -> dict[str, int]: ...

"""When to tell whom about an unacknowledged alert, in plain Python (no Django), so the timing
rules are unit-tested with a fake clock."""

from __future__ import annotations

from dataclasses import dataclass

ESCALATE = "escalate"
REPEAT = "repeat"


@dataclass(frozen=True)
class TierSpec:
    position: int
    after_s: float


def next_step(
    *,
    opened_at: float,
    last_notified_at: float | None,
    tier: int | None,
    tiers: list[TierSpec],
    repeat_every_s: float,
    now: float,
) -> tuple[str, int] | None:
    """What an unacknowledged alert needs now: (`escalate`, tier) to tell the highest tier that is
    due and not told yet, (`repeat`, tier) to remind the current tier, or None.

    `tier` is the highest tier told so far (None: nobody yet); times are epoch seconds."""
    told = -1 if tier is None else tier
    due = [t.position for t in tiers if t.position > told and now - opened_at >= t.after_s]
    if due:
        return ESCALATE, max(due)
    if (
        tier is not None
        and repeat_every_s > 0
        and last_notified_at is not None
        and now - last_notified_at >= repeat_every_s
    ):
        return REPEAT, tier
    return None

"""How long a shard holds readings back: learned from how late its readings really arrive.

Readings of one tag must reach the engine in event-time order, but scanners deliver late by
different amounts: an ESPresense-style node posts each advertisement at once, a gateway that
batches for a second delivers its oldest reading a second late, and a slow network adds its own
delay. A fixed hold long enough for the slowest kind makes every position wait that long even
where every scanner is prompt. So each shard measures how far behind its newest event time its
readings arrive (their *lateness*), keeps the largest in a sliding window of wall time, and holds
readings back for that plus a margin, between a floor and the configured ceiling.

Only lateness up to the ceiling counts: a reading later than that (a scanner whose clock is
behind, a gateway flushing its spool after an outage) is past any hold allowed, so it must not
pin the hold of every other reading at the ceiling. Until a shard has watched its traffic for a
whole window, or after a pause longer than one, the ceiling applies: nothing is known yet.

Plain Python (no Django): the pipeline stores the window with the shard's other state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class HoldPolicy:
    """The hold is `observed * factor + margin_s`, clamped to [floor_s, ceiling_s]."""

    ceiling_s: float
    floor_s: float
    window_s: float
    buckets: int = 6
    factor: float = 1.5
    margin_s: float = 0.05

    @property
    def adaptive(self) -> bool:
        return self.floor_s < self.ceiling_s and self.window_s > 0

    @property
    def bucket_s(self) -> float:
        return self.window_s / self.buckets


@dataclass
class LatenessWindow:
    """The largest lateness seen per bucket of wall time, over the policy's window."""

    #: wall time of the first observation since the shard's traffic last paused
    since: float | None = None
    #: {bucket index (wall time // bucket_s): largest lateness seen in it}
    maxima: dict[int, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value) -> LatenessWindow:
        """The stored form (`to_json`); anything else (missing, an older or damaged value)
        starts a new window, which holds for the ceiling until it has learned again."""
        try:
            since, maxima = value
            return cls(
                since=None if since is None else float(since),
                maxima={int(bucket): float(late) for bucket, late in maxima},
            )
        except (TypeError, ValueError):
            return cls()

    def to_json(self) -> list:
        return [self.since, [[bucket, late] for bucket, late in sorted(self.maxima.items())]]

    def observe(self, now: float, lateness: float, policy: HoldPolicy) -> None:
        """Record one arrival `lateness` seconds behind the shard's newest event time."""
        if not policy.adaptive:
            return
        self._expire(now, policy)
        if self.since is None:
            self.since = now
        if lateness > policy.ceiling_s or not math.isfinite(lateness):
            return
        bucket = int(now // policy.bucket_s)
        late = max(lateness, 0.0)
        if late > self.maxima.get(bucket, -1.0):
            self.maxima[bucket] = late

    def hold_s(self, now: float, policy: HoldPolicy) -> float:
        """How far behind the newest event time readings are released now."""
        if not policy.adaptive:
            return policy.ceiling_s
        self._expire(now, policy)
        if self.since is None or now - self.since < policy.window_s:
            return policy.ceiling_s
        observed = max(self.maxima.values(), default=0.0)
        hold = observed * policy.factor + policy.margin_s
        return min(policy.ceiling_s, max(policy.floor_s, hold))

    def _expire(self, now: float, policy: HoldPolicy) -> None:
        """Drop buckets older than the window; with none left the traffic paused for a whole
        window, so what was learned is stale and the window starts again."""
        oldest = int(now // policy.bucket_s) - policy.buckets + 1
        for bucket in [b for b in self.maxima if b < oldest]:
            del self.maxima[bucket]
        if not self.maxima and self.since is not None and now - self.since >= policy.window_s:
            self.since = None

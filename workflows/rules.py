"""Zone rules and par levels as plain Python (no Django), so the decisions are unit-tested in
microseconds and the services only gather facts and apply the answer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

ENTER = "enter"
DWELL = "dwell"

#: Statuses a rule never takes an asset out of unless the rule names them explicitly: biomed
#: decides when an asset leaves maintenance, and a retired asset stays retired.
PROTECTED_STATUSES = ("maintenance", "retired")


@dataclass(frozen=True)
class ZoneRuleSpec:
    id: int
    name: str
    trigger: str
    to_status: str
    from_statuses: tuple[str, ...] = ()
    zone_id: int | None = None
    zone_kind: str = ""
    asset_type_id: int | None = None
    dwell_s: float = 0.0
    priority: int = 100


@dataclass(frozen=True)
class AssetFacts:
    """What a rule may look at: the asset's status and type, the zone it is in, how long."""

    status: str
    asset_type_id: int
    zone_id: int | None
    zone_kind: str | None
    dwell_s: float = 0.0
    fired: frozenset[int] = field(default_factory=frozenset)


def matches(rule: ZoneRuleSpec, facts: AssetFacts, trigger: str) -> bool:
    if rule.trigger != trigger or facts.zone_id is None or rule.id in facts.fired:
        return False
    if rule.zone_id is not None and rule.zone_id != facts.zone_id:
        return False
    if rule.zone_id is None and rule.zone_kind != facts.zone_kind:
        return False
    if rule.asset_type_id is not None and rule.asset_type_id != facts.asset_type_id:
        return False
    if rule.from_statuses:
        if facts.status not in rule.from_statuses:
            return False
    elif facts.status in PROTECTED_STATUSES:
        return False
    if trigger == DWELL and facts.dwell_s < rule.dwell_s:
        return False
    return rule.to_status != facts.status


def precedence(rule: ZoneRuleSpec) -> tuple:
    """A rule on one zone beats a rule on its kind; then lower priority numbers; then older."""
    return (0 if rule.zone_id is not None else 1, rule.priority, rule.id)


def decide(rules: Iterable[ZoneRuleSpec], facts: AssetFacts, trigger: str) -> ZoneRuleSpec | None:
    """The one rule that changes the asset's status now, or None."""
    candidates = [rule for rule in rules if matches(rule, facts, trigger)]
    return min(candidates, key=precedence) if candidates else None


# --- par levels ------------------------------------------------------------------------------

PAR_OK = "ok"
PAR_BELOW_TARGET = "below-target"
PAR_CRITICAL = "critical"


@dataclass(frozen=True)
class ParState:
    state: str
    available: int
    target: int
    critical_min: int

    @property
    def shortfall(self) -> int:
        return max(self.target - self.available, 0)

    @property
    def alert_severity(self) -> str | None:
        """None above the critical minimum; `critical` with none left, `warning` otherwise."""
        if self.state != PAR_CRITICAL:
            return None
        return "critical" if self.available == 0 else "warning"


def par_state(available: int, target: int, critical_min: int) -> ParState:
    """Below the critical minimum is critical; below the target (but not critical) is a gap to
    restock on the next round; at or above the target is fine."""
    if available < critical_min:
        state = PAR_CRITICAL
    elif available < target:
        state = PAR_BELOW_TARGET
    else:
        state = PAR_OK
    return ParState(state, available, target, critical_min)

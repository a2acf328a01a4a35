"""The alert lifecycle, one for the whole product: open -> acknowledged -> resolved, updated in
place, every step on the alert's timeline, on the live console and (through django-auditlog) in
the audit trail. Sources (cold chain, RTLS workflows) call `report_condition` / `clear_condition`
or the finer-grained functions below; nothing here knows about sensors or assets, except that an
unresolved alert of a sensor sets its live state's `unresolved_alerts` flag (`_mark_unresolved`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from alerts import escalation, live, notify
from alerts.models import (
    SEVERITY_RANK,
    Alert,
    AlertEvent,
    AlertState,
    EscalationPolicy,
    EscalationTier,
)
from alerts.notify import Notification, Recipient, notifier, notifier_class

log = logging.getLogger("wardwise.alerts")
UNSET = object()
PAST_INCIDENT_NOTE = "condition was already over when its readings arrived"


class AlertError(ValueError):
    """A lifecycle step that is not allowed (e.g. acknowledging a resolved alert)."""


def default_policy() -> EscalationPolicy | None:
    return EscalationPolicy.objects.filter(is_default=True).first()


def _event(alert: Alert, kind: str, *, at=None, actor=None, message="", **data) -> AlertEvent:
    return AlertEvent.objects.create(
        alert=alert, kind=kind, at=at or timezone.now(), actor=actor, message=message, data=data
    )


@transaction.atomic
def open_alert(
    *,
    source: str,
    kind: str,
    subject: str,
    title: str,
    severity: str,
    started_at: datetime,
    message: str = "",
    unit: str = "",
    value: float | None = None,
    peak: float | None = None,
    sensor=None,
    policy: EscalationPolicy | None = None,
    details: dict | None = None,
    ended_at: datetime | None = None,
    resolved_at: datetime | None = None,
    now: datetime | None = None,
) -> Alert:
    """A new alert, told at once to the first tier of its policy. With `resolved_at` it records
    an incident that is already over (found in late data): stored resolved, still told once."""
    now = now or timezone.now()
    # A past incident is inserted resolved: inserted open, it would collide with the subject's
    # unresolved alert of the same kind, if any (constraint one_unresolved_alert_per_subject_kind).
    past = (
        {
            "state": AlertState.RESOLVED,
            "resolved_at": now,
            "resolved_automatically": True,
            "resolution_note": PAST_INCIDENT_NOTE,
        }
        if resolved_at is not None
        else {}
    )
    alert = Alert.objects.create(
        **past,
        source=source,
        kind=kind,
        subject=subject,
        title=title,
        severity=severity,
        started_at=started_at,
        ended_at=ended_at,
        message=message,
        unit=unit,
        last_value=value,
        peak_value=peak if peak is not None else value,
        sensor=sensor,
        policy=policy or default_policy(),
        details=details or {},
        opened_at=now,
    )
    _event(alert, AlertEvent.Kind.OPENED, at=now, message=message, severity=severity)
    if resolved_at is not None:
        _event(alert, AlertEvent.Kind.CONDITION_ENDED, at=now, condition_ended_at=_iso(ended_at))
        _event(alert, AlertEvent.Kind.RESOLVED, at=now, message=alert.resolution_note)
    else:
        _mark_unresolved(alert)
    live.broadcast(alert, "opened")
    if resolved_at is None:
        _advance_escalation(alert, now)
    else:
        _notify_past_incident(alert, now)
    return alert


def _mark_unresolved(alert: Alert) -> None:
    """A sensor's alert is unresolved: set its state's `unresolved_alerts`, so that uploads look
    for the alert again (environment.monitoring skips the query while the flag is clear, and
    only the rule engine clears it, under the state row's lock)."""
    if alert.sensor_id is None:
        return
    from environment.models import SensorState

    SensorState.objects.filter(sensor_id=alert.sensor_id, unresolved_alerts=False).update(
        unresolved_alerts=True
    )


@transaction.atomic
def update_alert(
    alert: Alert,
    *,
    severity: str | None = None,
    value: float | None = None,
    peak: float | None = None,
    started_at: datetime | None = None,
    ended_at=UNSET,
    message: str | None = None,
    exact: bool = False,
    now: datetime | None = None,
) -> Alert:
    """Update an incident in place: new value, worse peak, severity raised (never lowered: the
    alert keeps the worst it reached, unless `exact`: late data rewrote the incident), condition
    ended or back. People are told again only when the severity rises."""
    now = now or timezone.now()
    if alert.is_resolved and not exact:
        raise AlertError("a resolved alert cannot be updated")
    changed = {"updated_at"}
    raised = severity is not None and SEVERITY_RANK[severity] > SEVERITY_RANK[alert.severity]
    lowered = (
        exact and severity is not None and SEVERITY_RANK[severity] < SEVERITY_RANK[alert.severity]
    )
    if raised or lowered:
        verb = "raised" if raised else "lowered by late readings"
        _event(
            alert,
            AlertEvent.Kind.ESCALATED_SEVERITY,
            at=now,
            message=f"severity {verb} from {alert.severity} to {severity}",
            old=alert.severity,
            new=severity,
        )
        alert.severity = severity
        changed.add("severity")
    for name, new in (
        ("last_value", value),
        ("peak_value", peak),
        ("started_at", started_at),
        ("message", message),
    ):
        if new is not None and getattr(alert, name) != new:
            setattr(alert, name, new)
            changed.add(name)
    if ended_at is not UNSET and ended_at != alert.ended_at:
        if ended_at is None:
            _event(alert, AlertEvent.Kind.CONDITION_RETURNED, at=now)
        elif alert.ended_at is None:
            _event(
                alert, AlertEvent.Kind.CONDITION_ENDED, at=now, condition_ended_at=_iso(ended_at)
            )
        alert.ended_at = ended_at
        changed.add("ended_at")
    alert.save(update_fields=sorted(changed))
    live.broadcast(alert, "updated")
    if raised:
        _notify_told_tiers(alert, f"severity raised to {severity}", now)
    return alert


@transaction.atomic
def acknowledge(alert: Alert, user, comment: str = "", *, now: datetime | None = None) -> Alert:
    """Someone has it in hand: stops reminders and escalation."""
    now = now or timezone.now()
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.state != AlertState.OPEN:
        raise AlertError(f"only an open alert can be acknowledged; this one is {alert.state}")
    alert.state = AlertState.ACKNOWLEDGED
    alert.acknowledged_at = now
    alert.acknowledged_by = user
    alert.acknowledge_comment = comment
    alert.save()
    _event(alert, AlertEvent.Kind.ACKNOWLEDGED, at=now, actor=user, message=comment)
    live.broadcast(alert, "acknowledged")
    _notify_lifecycle(alert, notify.ACKNOWLEDGED, f"acknowledged by {user.get_username()}")
    return alert


@transaction.atomic
def resolve(
    alert: Alert,
    user=None,
    note: str = "",
    *,
    automatically: bool = False,
    now: datetime | None = None,
) -> Alert:
    """Close the incident: automatically when the condition has cleared, or by a person, who
    must say what was done (the corrective action the report shows)."""
    now = now or timezone.now()
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.is_resolved:
        raise AlertError("the alert is already resolved")
    if not automatically and not note.strip():
        raise AlertError("resolving by hand needs a note on the corrective action")
    alert.state = AlertState.RESOLVED
    alert.resolved_at = now
    alert.resolved_by = None if automatically else user
    alert.resolution_note = note
    alert.resolved_automatically = automatically
    alert.save()
    _event(
        alert,
        AlertEvent.Kind.RESOLVED,
        at=now,
        actor=None if automatically else user,
        message=note,
        automatically=automatically,
    )
    live.broadcast(alert, "resolved")
    by = "automatically" if automatically else f"by {user.get_username() if user else 'hand'}"
    _notify_lifecycle(alert, notify.RESOLVED, f"resolved {by}")
    return alert


@transaction.atomic
def reopen(alert: Alert, reason: str, *, now: datetime | None = None) -> Alert:
    """An automatically resolved alert whose condition turned out to go on (late readings)."""
    now = now or timezone.now()
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if not (alert.is_resolved and alert.resolved_automatically):
        raise AlertError("only an automatically resolved alert can be reopened")
    alert.state = AlertState.ACKNOWLEDGED if alert.acknowledged_at else AlertState.OPEN
    alert.resolved_at = None
    alert.resolution_note = ""
    alert.resolved_automatically = False
    alert.ended_at = None
    alert.save()
    _mark_unresolved(alert)
    _event(alert, AlertEvent.Kind.CONDITION_RETURNED, at=now, message=reason)
    live.broadcast(alert, "reopened")
    _advance_escalation(alert, now)
    return alert


@transaction.atomic
def withdraw(alert: Alert, reason: str, *, ended_at=None, now: datetime | None = None) -> Alert:
    """Late data showed the alert's condition never met its rule. The alert stays on record
    (people may have acted on it), resolved automatically and marked withdrawn."""
    now = now or timezone.now()
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    alert.details = {**alert.details, "withdrawn": True}
    if alert.ended_at is None:
        alert.ended_at = ended_at
    if not alert.is_resolved:
        alert.state = AlertState.RESOLVED
        alert.resolved_at = now
        alert.resolved_automatically = True
        alert.resolution_note = reason
    alert.save()
    _event(alert, AlertEvent.Kind.RESOLVED, at=now, message=reason, withdrawn=True)
    live.broadcast(alert, "withdrawn")
    _notify_lifecycle(alert, notify.RESOLVED, "withdrawn: " + reason)
    return alert


def unresolved(source: str, subject: str, kind: str) -> Alert | None:
    return (
        Alert.objects.select_for_update()
        .filter(source=source, subject=subject, kind=kind)
        .exclude(state=AlertState.RESOLVED)
        .first()
    )


@transaction.atomic
def report_condition(
    *,
    source: str,
    kind: str,
    subject: str,
    title: str,
    severity: str,
    started_at: datetime,
    value: float | None = None,
    peak: float | None = None,
    message: str = "",
    unit: str = "",
    sensor=None,
    policy: EscalationPolicy | None = None,
    details: dict | None = None,
    now: datetime | None = None,
) -> Alert:
    """The condition holds: open the subject's alert of this kind, or update the one open.
    `peak` is the worst value so far, which only the source can judge (higher or lower)."""
    alert = unresolved(source, subject, kind)
    if alert is None:
        return open_alert(
            source=source,
            kind=kind,
            subject=subject,
            title=title,
            severity=severity,
            started_at=started_at,
            value=value,
            peak=peak,
            message=message,
            unit=unit,
            sensor=sensor,
            policy=policy,
            details=details,
            now=now,
        )
    return update_alert(
        alert, severity=severity, value=value, peak=peak, message=message or None, now=now
    )


@transaction.atomic
def clear_condition(
    *, source: str, kind: str, subject: str, ended_at: datetime, note: str = "", now=None
) -> Alert | None:
    """The condition is over: resolve the subject's alert of this kind, if any."""
    alert = unresolved(source, subject, kind)
    if alert is None:
        return None
    update_alert(alert, ended_at=ended_at, now=now)
    return resolve(alert, note=note or "condition cleared", automatically=True, now=now)


# --- escalation and notification -----------------------------------------------------------


def _tiers(policy: EscalationPolicy | None) -> list[EscalationTier]:
    if policy is None:
        return []
    return list(policy.tiers.all())


def _advance_escalation(alert: Alert, now: datetime) -> str | None:
    """Tell whoever is due: a tier whose time has come, or a reminder to the current tier."""
    if alert.state != AlertState.OPEN or alert.policy_id is None:
        return None
    tiers = _tiers(alert.policy)
    step = escalation.next_step(
        opened_at=alert.opened_at.timestamp(),
        last_notified_at=alert.last_notified_at.timestamp() if alert.last_notified_at else None,
        tier=alert.tier,
        tiers=[escalation.TierSpec(t.position, t.after_min * 60.0) for t in tiers],
        repeat_every_s=alert.policy.repeat_every_min * 60.0,
        now=now.timestamp(),
    )
    if step is None:
        return None
    action, position = step
    first = alert.tier is None
    alert.tier = position
    alert.last_notified_at = now
    alert.notifications_sent += 1
    alert.save(update_fields=["tier", "last_notified_at", "notifications_sent", "updated_at"])
    if action == escalation.ESCALATE:
        kind = AlertEvent.Kind.NOTIFIED if first else AlertEvent.Kind.ESCALATED
        reason = "new alert" if first else f"unacknowledged, escalated to tier {position}"
        event = notify.OPENED if first else notify.ESCALATED
    else:
        kind, reason, event = AlertEvent.Kind.REPEATED, "still unacknowledged", notify.REPEATED
    tier = next(t for t in tiers if t.position == position)
    _event(alert, kind, at=now, message=reason, tier=position, channels=list(tier.channels))
    _schedule(alert, [tier], reason, event)
    if action == escalation.ESCALATE and not first:
        live.broadcast(alert, "escalated")
    return action


def _notify_past_incident(alert: Alert, now: datetime) -> None:
    """An incident found in late readings that was over before they arrived: stored resolved,
    so it never escalates or repeats, but the policy's first tier is still told once (it may
    have to check the stock), and the channels that follow alerts to their end (webhooks) also
    learn that it is resolved."""
    tiers = _tiers(alert.policy)
    if not tiers:
        return
    first = tiers[0]
    reason = "found in late readings, already over"
    alert.tier = first.position
    alert.last_notified_at = now
    alert.notifications_sent += 1
    alert.save(update_fields=["tier", "last_notified_at", "notifications_sent", "updated_at"])
    _event(
        alert,
        AlertEvent.Kind.NOTIFIED,
        at=now,
        message=reason,
        tier=first.position,
        channels=list(first.channels),
    )
    _schedule(alert, [first], reason, notify.OPENED)
    _notify_lifecycle(alert, notify.RESOLVED, "resolved automatically: " + PAST_INCIDENT_NOTE)


def _notify_told_tiers(alert: Alert, reason: str, now: datetime) -> None:
    if alert.tier is None:
        return
    told = [tier for tier in _tiers(alert.policy) if tier.position <= alert.tier]
    for tier in told:
        _event(alert, AlertEvent.Kind.NOTIFIED, at=now, message=reason, tier=tier.position)
    _schedule(alert, told, reason, notify.SEVERITY)


def _notify_lifecycle(alert: Alert, event: str, reason: str) -> None:
    """Acknowledged or resolved: tell the channels that follow an alert to its end (webhooks)
    among those of the tiers told so far. People are not e-mailed about it."""
    if alert.tier is None or alert.policy_id is None:
        return
    told = [tier for tier in _tiers(alert.policy) if tier.position <= alert.tier]
    _schedule(alert, told, reason, event, lifecycle=True)


def _channel_class(channel: str):
    try:
        return notifier_class(channel)
    except (KeyError, ImportError):
        return None


def _schedule(
    alert: Alert, tiers: list[EscalationTier], reason: str, event: str, *, lifecycle=False
) -> None:
    """Queue one delivery per channel and tier after commit (Celery retries each on its own).
    A per-alert channel (a webhook) is queued once, for the highest of the tiers naming it; with
    `lifecycle`, only the channels told of acknowledgements and resolutions are queued. An
    unknown channel is still queued, so its failure shows in the worker's log."""
    from alerts import tasks

    jobs: dict = {}
    for tier in sorted(tiers, key=lambda t: t.position):
        for channel in tier.channels:
            kind = _channel_class(channel)
            if lifecycle and not (kind is not None and kind.lifecycle):
                continue
            key = channel if kind is not None and kind.per_alert else (channel, tier.position)
            jobs[key] = (alert.pk, tier.position, reason, channel, event)
    for args in jobs.values():
        transaction.on_commit(lambda args=args: tasks.send_notification.delay(*args))


def document(alert: Alert) -> dict:
    """The alert as notifications carry it: the console's view plus who closed it and how."""
    return {
        **live.payload(alert),
        "acknowledge_comment": alert.acknowledge_comment,
        "resolved_by": alert.resolved_by.get_username() if alert.resolved_by_id else None,
        "resolution_note": alert.resolution_note,
        "resolved_automatically": alert.resolved_automatically,
        "withdrawn": bool(alert.details.get("withdrawn")),
    }


def deliver(
    alert_id: int, tier_position: int, reason: str, channel: str, event: str = notify.OPENED
) -> Notification:
    """Send one notification now (called by the Celery task)."""
    alert = Alert.objects.select_related("policy", "sensor", "acknowledged_by", "resolved_by").get(
        pk=alert_id
    )
    tier = alert.policy.tiers.get(position=tier_position)
    notification = Notification(
        alert_id=alert.pk,
        title=alert.title,
        kind=alert.kind,
        severity=alert.severity,
        state=alert.state,
        message=alert.message,
        reason=reason,
        tier=tier_position,
        recipients=tuple(Recipient(u.get_username(), u.email) for u in tier.recipients()),
        event=event,
        alert=document(alert),
    )
    notifier(channel).send(notification)
    return notification


def run_escalations(now: datetime | None = None) -> int:
    """Escalate and remind for every unacknowledged alert; the beat task calls this each minute.
    Rows are locked and skipped when locked, so overlapping runs never tell anyone twice."""
    now = now or timezone.now()
    done = 0
    ids = list(
        Alert.objects.filter(state=AlertState.OPEN, policy__isnull=False).values_list(
            "pk", flat=True
        )
    )
    for pk in ids:
        with transaction.atomic():
            alert = (
                Alert.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("policy")
                .filter(pk=pk, state=AlertState.OPEN)
                .first()
            )
            if alert is not None and _advance_escalation(alert, now):
                done += 1
    return done


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None

"""Pluggable notification channels. A notifier gets one `Notification` and sends it; a failure
raises, so the Celery task that called it retries. Channels are named in escalation tiers and
mapped to classes by `settings.ALERT_NOTIFIERS` (defaults below); a channel may name a target
after a colon (`webhook:pharmacy-pager`), which is passed to the notifier."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail
from django.utils.module_loading import import_string

log = logging.getLogger("wardwise.alerts")

DEFAULT_NOTIFIERS = {
    "log": "alerts.notify.LogNotifier",
    "email": "alerts.notify.EmailNotifier",
    "webhook": "alerts.notify.WebhookNotifier",
}

#: Why a notification is sent. People are told when an alert opens, escalates, is still
#: unacknowledged (`repeated`) or got worse (`severity`); channels with `lifecycle = True` are
#: also told when it is acknowledged and resolved.
OPENED, ESCALATED, REPEATED, SEVERITY = "opened", "escalated", "repeated", "severity"
ACKNOWLEDGED, RESOLVED = "acknowledged", "resolved"


@dataclass(frozen=True)
class Recipient:
    username: str
    email: str


@dataclass(frozen=True)
class Notification:
    alert_id: int
    title: str
    kind: str
    severity: str
    state: str
    message: str
    reason: str
    tier: int
    recipients: tuple[Recipient, ...]
    event: str = OPENED
    alert: dict = field(default_factory=dict, compare=False)

    @property
    def subject(self) -> str:
        return f"[Wardwise {self.severity.upper()}] {self.title}: {self.kind} ({self.reason})"

    @property
    def body(self) -> str:
        closing = (
            "It was over before its readings arrived: check what it may have affected."
            if self.state == "resolved"
            else "Acknowledge it in Wardwise to stop reminders and escalation."
        )
        return (
            f"{self.message}\n\nAlert #{self.alert_id}, {self.state}, escalation tier {self.tier}."
            f"\n{closing}"
        )


class Notifier:
    name = "base"
    #: Told of acknowledgements and resolutions too (machines close their tickets and pages).
    lifecycle = False
    #: One notification per alert event, not one per escalation tier (the receiver is the same
    #: whichever tier names the channel).
    per_alert = False

    def __init__(self, target: str = ""):
        self.target = target

    def send(self, notification: Notification) -> None:
        raise NotImplementedError


class LogNotifier(Notifier):
    """Writes the notification to the log (shipped to the hospital's log platform)."""

    name = "log"

    def send(self, notification: Notification) -> None:
        log.warning(
            "alert %s %s to %s",
            notification.alert_id,
            notification.subject,
            ", ".join(r.username for r in notification.recipients) or "nobody",
        )


class EmailNotifier(Notifier):
    """E-mail through Django's mail framework (EMAIL_BACKEND decides SMTP, console, ...)."""

    name = "email"

    def send(self, notification: Notification) -> None:
        addresses = sorted({r.email for r in notification.recipients if r.email})
        if not addresses:
            return
        send_mail(
            notification.subject,
            notification.body,
            getattr(settings, "DEFAULT_FROM_EMAIL", None),
            addresses,
            fail_silently=False,
        )


class WebhookNotifier(Notifier):
    """Signed webhooks through the integrations app (integrations.events, .webhooks): the event
    is written to its delivery log and sent by Celery, HMAC-signed, with retries and back-off.

    `webhook` reaches every active receiver subscribed to the event type (`alert.opened`,
    `alert.escalated`, `alert.acknowledged`, `alert.resolved`); `webhook:<name>` only the
    receiver of that name. Reminders are not sent: the receiver already has the alert."""

    name = "webhook"
    lifecycle = True
    per_alert = True
    EVENT_TYPES = {
        OPENED: "alert.opened",
        ESCALATED: "alert.escalated",
        SEVERITY: "alert.escalated",
        ACKNOWLEDGED: "alert.acknowledged",
        RESOLVED: "alert.resolved",
    }

    def send(self, notification: Notification) -> None:
        from integrations import events
        from integrations.models import Webhook

        event_type = self.EVENT_TYPES.get(notification.event)
        if event_type is None:
            return
        only = None
        if self.target:
            only = set(Webhook.objects.filter(name=self.target).values_list("pk", flat=True))
            if not only:
                log.warning("alert %s: no webhook named %r", notification.alert_id, self.target)
                return
        events.emit(
            event_type,
            {
                "alert": notification.alert,
                "notification": {
                    "event": notification.event,
                    "reason": notification.reason,
                    "tier": notification.tier,
                    "recipients": [r.username for r in notification.recipients],
                },
            },
            _occurred_at(notification),
            only=only,
        )


def _occurred_at(notification: Notification):
    from django.utils.dateparse import parse_datetime

    key = {OPENED: "opened_at", ACKNOWLEDGED: "acknowledged_at", RESOLVED: "resolved_at"}.get(
        notification.event, "updated_at"
    )
    stamp = notification.alert.get(key) or notification.alert.get("updated_at")
    return parse_datetime(stamp) if stamp else None


def notifier_class(name: str) -> type[Notifier]:
    registry = {**DEFAULT_NOTIFIERS, **getattr(settings, "ALERT_NOTIFIERS", {})}
    base = name.partition(":")[0]
    if base not in registry:
        raise KeyError(f"no notifier named {base!r}; known: {', '.join(sorted(registry))}")
    return import_string(registry[base])


def notifier(name: str) -> Notifier:
    return notifier_class(name)(name.partition(":")[2])

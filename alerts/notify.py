"""Pluggable notification channels. A notifier gets one `Notification` and sends it; a failure
raises, so the Celery task that called it retries. Channels are named in escalation tiers and
mapped to classes by `settings.ALERT_NOTIFIERS` (defaults below)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.utils.module_loading import import_string

log = logging.getLogger("wardwise.alerts")

DEFAULT_NOTIFIERS = {
    "log": "alerts.notify.LogNotifier",
    "email": "alerts.notify.EmailNotifier",
}


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

    @property
    def subject(self) -> str:
        return f"[Wardwise {self.severity.upper()}] {self.title}: {self.kind} ({self.reason})"

    @property
    def body(self) -> str:
        return (
            f"{self.message}\n\nAlert #{self.alert_id}, {self.state}, escalation tier {self.tier}."
            "\nAcknowledge it in Wardwise to stop reminders and escalation."
        )


class Notifier:
    name = "base"

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


def notifier(name: str) -> Notifier:
    registry = {**DEFAULT_NOTIFIERS, **getattr(settings, "ALERT_NOTIFIERS", {})}
    if name not in registry:
        raise KeyError(f"no notifier named {name!r}; known: {', '.join(sorted(registry))}")
    return import_string(registry[name])()

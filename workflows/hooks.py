"""Where workflows plugs into the rest of the product, connected once at start-up
(WorkflowsConfig.ready): asset saves feed the status history, the pipeline's zone changes feed
the rules, the presence check feeds device-health alerts, configuration edits drop caches, and
every migrate checks the status-history trigger is in place."""

from __future__ import annotations

from django.apps import apps as django_apps
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.db.models.signals import post_delete, post_migrate, post_save, pre_save

from integrations import events
from tracking import presence
from tracking.models import Asset
from workflows import config, devicehealth, maintenance, status, triggers, zones
from workflows.models import Geofence, ParLevel, StatusChange, WorkOrder, ZoneRule


def _remember_status(sender, instance: Asset, update_fields=None, **kwargs) -> None:
    """Before an asset save: its stored status, and the newest history row (the database
    writes the save's row after it)."""
    instance._workflows_old_status = None
    if instance.pk is None or (update_fields is not None and "status" not in update_fields):
        return
    newest = StatusChange.objects.filter(asset_id=OuterRef("pk")).order_by("-pk").values("pk")
    stored = (
        Asset.objects.filter(pk=instance.pk)
        .annotate(mark=Subquery(newest[:1]))
        .values_list("status", "mark")
        .first()
    )
    if stored is not None:
        instance._workflows_old_status, instance._workflows_history_mark = stored


def _record_status(sender, instance: Asset, created: bool, **kwargs) -> None:
    old = getattr(instance, "_workflows_old_status", None)
    if created or old is None or old == instance.status:
        return
    mark = getattr(instance, "_workflows_history_mark", None) or 0
    status.record_manual_change(instance, old, instance.status, mark)


def _work_order_saved(sender, instance: WorkOrder, **kwargs) -> None:
    maintenance.work_order_changed(instance)


def _gateways_offline(sender, scanner_ids, **kwargs) -> None:
    transaction.on_commit(lambda: devicehealth.gateways_offline(scanner_ids), robust=True)


def _tags_silent(sender, asset_ids, **kwargs) -> None:
    transaction.on_commit(lambda: devicehealth.tags_silent(asset_ids), robust=True)


pre_save.connect(_remember_status, sender=Asset, dispatch_uid="workflows-status-before")
post_save.connect(_record_status, sender=Asset, dispatch_uid="workflows-status-after")
post_save.connect(_work_order_saved, sender=WorkOrder, dispatch_uid="workflows-work-order")
for _model in (ZoneRule, Geofence, ParLevel):
    post_save.connect(config.forget, sender=_model, dispatch_uid=f"workflows-config-{_model}")
    post_delete.connect(config.forget, sender=_model, dispatch_uid=f"workflows-config-d-{_model}")
presence.scanners_marked_offline.connect(_gateways_offline, dispatch_uid="workflows-gateways")
presence.assets_marked_missing.connect(_tags_silent, dispatch_uid="workflows-tags-silent")
events.add_stay_listener(zones.on_zone_changes, wants=config.zone_work_configured)
post_migrate.connect(
    triggers.ensure_installed,
    sender=django_apps.get_app_config("workflows"),
    dispatch_uid="workflows-status-trigger",
)

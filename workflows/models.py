"""Equipment workflows: zone rules that keep asset status up to date, par levels, geofences,
preventive maintenance and recalls, and tag battery history. The decisions live in plain
Python modules (rules, geofence, schedules, forecast, usage); these models hold configuration
and history."""

from __future__ import annotations

from auditlog.registry import auditlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from hospital.models import Building, Department, Floor, Zone, ZoneKind
from tracking.models import Asset, AssetStatus, AssetType, Tag
from workflows import geofence, rules

#: What a zone rule may set: the statuses of everyday use (biomed sets maintenance by hand).
RULE_STATUSES = [
    (AssetStatus.AVAILABLE.value, AssetStatus.AVAILABLE.label),
    (AssetStatus.IN_USE.value, AssetStatus.IN_USE.label),
    (AssetStatus.NEEDS_CLEANING.value, AssetStatus.NEEDS_CLEANING.label),
]


class ZoneRule(models.Model):
    """An automatic status change: on entering a zone (or any zone of a kind), or after
    staying in it for `dwell_min` minutes."""

    class Trigger(models.TextChoices):
        ENTER = rules.ENTER, "On entering"
        DWELL = rules.DWELL, "After staying"

    name = models.CharField(max_length=120, unique=True)
    is_active = models.BooleanField(default=True)
    trigger = models.CharField(max_length=8, choices=Trigger.choices, default=Trigger.ENTER)
    zone_kind = models.CharField(
        max_length=32, choices=ZoneKind.choices, blank=True, help_text="Every zone of this kind."
    )
    zone = models.ForeignKey(
        Zone,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="status_rules",
        help_text="One zone; takes precedence over rules on its kind.",
    )
    asset_type = models.ForeignKey(
        AssetType,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Only assets of this type (empty: all).",
    )
    from_statuses = models.JSONField(
        default=list,
        blank=True,
        help_text='Only assets in one of these statuses, e.g. ["needs-cleaning"] (empty: any '
        "status except maintenance and retired).",
    )
    to_status = models.CharField(max_length=20, choices=RULE_STATUSES)
    dwell_min = models.PositiveIntegerField(
        default=0, help_text="Minutes in the zone before a dwell rule fires."
    )
    priority = models.PositiveSmallIntegerField(
        default=100, help_text="Lower wins when two rules of the same reach match."
    )
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["priority", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if bool(self.zone_id) == bool(self.zone_kind):
            raise ValidationError("name either one zone or a zone kind")
        if self.trigger == rules.DWELL and not self.dwell_min:
            raise ValidationError({"dwell_min": "a dwell rule needs the minutes"})
        known = set(AssetStatus.values)
        if not isinstance(self.from_statuses, list) or not set(self.from_statuses) <= known:
            raise ValidationError({"from_statuses": f"a list of statuses among {sorted(known)}"})

    def spec(self) -> rules.ZoneRuleSpec:
        return rules.ZoneRuleSpec(
            id=self.pk,
            name=self.name,
            trigger=self.trigger,
            to_status=self.to_status,
            from_statuses=tuple(self.from_statuses or ()),
            zone_id=self.zone_id,
            zone_kind=self.zone_kind,
            asset_type_id=self.asset_type_id,
            dwell_s=self.dwell_min * 60.0,
            priority=self.priority,
        )


class StatusChange(models.Model):
    """Every status change of every asset, with who or which rule made it: the history that
    utilisation is computed from and the audit trail people read.

    The database writes the row itself (a trigger on the asset table, migration 0004), so no
    change can escape the history; Wardwise's own paths then attribute the row they caused
    (workflows.status). A row nobody attributed is a change made outside Wardwise workflows."""

    class Source(models.TextChoices):
        SAVED = "saved", "Asset saved (status buttons, API, admin form, CSV import, site file)"
        BULK = "bulk", "Bulk status change (admin action)"
        RULE = "zone-rule", "Zone rule"
        OUTSIDE = "outside", "Changed outside Wardwise workflows"

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="status_changes")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    old_status = models.CharField(max_length=20, choices=AssetStatus.choices)
    new_status = models.CharField(max_length=20, choices=AssetStatus.choices)
    rule = models.ForeignKey(
        ZoneRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="changes"
    )
    rule_name = models.CharField(max_length=120, blank=True, help_text="Kept if the rule goes.")
    zone = models.ForeignKey(
        Zone, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    stay = models.ForeignKey(
        "tracking.ZoneStay", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.SAVED)
    needs_reconciling = models.BooleanField(
        default=False,
        help_text="Recorded by the database, not yet attributed or audited (a change made "
        "outside Wardwise workflows, until the reconciliation audits it).",
    )

    class Meta:
        ordering = ["asset", "at", "pk"]
        indexes = [
            models.Index(fields=["asset", "at"]),
            models.Index(
                fields=["needs_reconciling"],
                condition=models.Q(needs_reconciling=True),
                name="status_change_unreconciled",
            ),
        ]

    def __str__(self) -> str:
        by = (
            self.rule_name
            or (self.actor and self.actor.get_username())
            or self.get_source_display().lower()
        )
        return f"{self.asset_id}: {self.old_status} -> {self.new_status} by {by}"


class ZoneGroup(models.Model):
    """Zones counted together for a par level (e.g. the clean utility rooms of ward 3)."""

    name = models.CharField(max_length=120, unique=True)
    zones = models.ManyToManyField(Zone, related_name="zone_groups")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ParLevel(models.Model):
    """How many available assets of a type a unit should hold (target) and must hold
    (critical minimum). Counted: status available, present, located in the unit's zones."""

    asset_type = models.ForeignKey(AssetType, on_delete=models.CASCADE, related_name="+")
    department = models.ForeignKey(
        Department,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="par_levels",
        help_text="Counts assets located in the department's zones.",
    )
    zone_group = models.ForeignKey(
        ZoneGroup, on_delete=models.CASCADE, null=True, blank=True, related_name="par_levels"
    )
    target = models.PositiveIntegerField()
    critical_min = models.PositiveIntegerField()
    policy = models.ForeignKey(
        "alerts.EscalationPolicy",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who is told below the critical minimum (empty: the default policy).",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["asset_type__name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(department__isnull=False, zone_group__isnull=True)
                    | models.Q(department__isnull=True, zone_group__isnull=False)
                ),
                name="par_level_has_one_unit",
            )
        ]

    def __str__(self) -> str:
        return f"{self.asset_type} in {self.unit_name}"

    @property
    def unit_name(self) -> str:
        return str(self.department or self.zone_group)

    def clean(self) -> None:
        if bool(self.department_id) == bool(self.zone_group_id):
            raise ValidationError("name either a department or a zone group")
        if self.critical_min > self.target:
            raise ValidationError({"critical_min": "may not exceed the target"})

    def zone_ids(self):
        if self.department_id:
            return Zone.objects.filter(department_id=self.department_id).values("pk")
        return self.zone_group.zones.values("pk")


class Geofence(models.Model):
    """Alert when an asset enters or leaves a zone, every zone of a kind, a floor or a
    building, outside quiet hours, told to the rule's escalation policy."""

    class Event(models.TextChoices):
        ENTER = geofence.ENTER, "Enters"
        EXIT = geofence.EXIT, "Leaves"

    class Scope(models.TextChoices):
        ZONE = geofence.SCOPE_ZONE, "Zone"
        ZONE_KIND = geofence.SCOPE_ZONE_KIND, "Zone kind"
        FLOOR = geofence.SCOPE_FLOOR, "Floor"
        BUILDING = geofence.SCOPE_BUILDING, "Building"

    name = models.CharField(max_length=120, unique=True)
    is_active = models.BooleanField(default=True)
    event = models.CharField(max_length=8, choices=Event.choices)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    zone = models.ForeignKey(
        Zone, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    zone_kind = models.CharField(max_length=32, choices=ZoneKind.choices, blank=True)
    floor = models.ForeignKey(
        Floor, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    building = models.ForeignKey(
        Building, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    asset_type = models.ForeignKey(
        AssetType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    severity = models.CharField(
        max_length=16,
        choices=[("info", "Info"), ("warning", "Warning"), ("critical", "Critical")],
        default="warning",
    )
    quiet_start = models.TimeField(
        null=True, blank=True, help_text="Local time (TIME_ZONE) from which the rule is silent."
    )
    quiet_end = models.TimeField(null=True, blank=True, help_text="Local time it speaks again.")
    policy = models.ForeignKey(
        "alerts.EscalationPolicy",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The rule's recipients (empty: the default policy).",
    )
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def target(self):
        return {
            geofence.SCOPE_ZONE: self.zone_id,
            geofence.SCOPE_ZONE_KIND: self.zone_kind,
            geofence.SCOPE_FLOOR: self.floor_id,
            geofence.SCOPE_BUILDING: self.building_id,
        }[self.scope]

    def clean(self) -> None:
        if not self.target:
            raise ValidationError(f"a {self.scope} geofence needs its {self.scope}")
        if bool(self.quiet_start) != bool(self.quiet_end):
            raise ValidationError("quiet hours need both a start and an end")

    def spec(self) -> geofence.FenceSpec:
        return geofence.FenceSpec(
            id=self.pk,
            event=self.event,
            scope=self.scope,
            target=self.target,
            asset_type_id=self.asset_type_id,
        )


class MaintenanceSchedule(models.Model):
    """Preventive maintenance for every asset of a type, or for one asset: every
    `interval_days`, or on a day of given calendar months."""

    name = models.CharField(max_length=120)
    asset_type = models.ForeignKey(
        AssetType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    asset = models.ForeignKey(
        Asset, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    interval_days = models.PositiveIntegerField(null=True, blank=True)
    months = models.JSONField(
        default=list, blank=True, help_text="Calendar months, e.g. [3, 9] for March and September."
    )
    day_of_month = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(31)]
    )
    starts_on = models.DateField(default=timezone.localdate, help_text="First due date.")
    instructions = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    raise_alerts = models.BooleanField(
        default=True, help_text="Raise an alert when an asset's maintenance falls due."
    )
    alert_days_before = models.PositiveIntegerField(
        default=0,
        help_text="Open the alert (severity info) this many days before the due date "
        "(0: on the due date).",
    )
    critical_after_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=30,
        help_text="Overdue alerts are warnings; overdue by this many days they turn critical "
        "(empty: never).",
    )
    policy = models.ForeignKey(
        "alerts.EscalationPolicy",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who is told when maintenance falls due (empty: the default policy).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if bool(self.asset_type_id) == bool(self.asset_id):
            raise ValidationError("name either an asset type or one asset")
        if bool(self.interval_days) == bool(self.months):
            raise ValidationError("give either an interval in days or calendar months")
        if not isinstance(self.months, list) or any(
            not isinstance(m, int) or not 1 <= m <= 12 for m in self.months
        ):
            raise ValidationError({"months": "a list of month numbers 1 to 12"})


class WorkOrder(models.Model):
    class Kind(models.TextChoices):
        PREVENTIVE = "preventive", "Preventive maintenance"
        CORRECTIVE = "corrective", "Repair"
        RECALL = "recall", "Recall"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in-progress", "In progress"
        ON_HOLD = "on-hold", "On hold"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="work_orders")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CORRECTIVE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    title = models.CharField(max_length=200)
    notes = models.TextField(blank=True)
    schedule = models.ForeignKey(
        MaintenanceSchedule,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="work_orders",
    )
    recall = models.ForeignKey(
        "RecallCampaign",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="work_orders",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    due_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["asset", "schedule", "status"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title} ({self.status})"

    def save(self, *args, **kwargs):
        """Finishing stamps the completion time (the next preventive due date counts from it);
        reopening clears it."""
        if self.status == self.Status.DONE and self.completed_at is None:
            self.completed_at = timezone.now()
        elif self.status != self.Status.DONE:
            self.completed_at = None
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "completed_at"}
        super().save(*args, **kwargs)


class MaintenanceDue(models.Model):
    """An asset's next preventive-maintenance date (the earliest over its schedules), kept
    up to date by workflows.maintenance.refresh_maintenance_due; shown as `maintenance_due`."""

    asset = models.OneToOneField(Asset, on_delete=models.CASCADE, related_name="maintenance")
    due_on = models.DateField(db_index=True)
    schedule = models.ForeignKey(MaintenanceSchedule, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"{self.asset} due {self.due_on}"


class RecallCampaign(models.Model):
    """A manufacturer's recall: every asset of the model (and serial range) is marked and gets
    a recall work order."""

    reference = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    manufacturer = models.CharField(max_length=120, blank=True)
    model = models.CharField(max_length=120)
    serial_first = models.CharField(max_length=120, blank=True, help_text="Empty: no lower bound.")
    serial_last = models.CharField(max_length=120, blank=True, help_text="Empty: no upper bound.")
    issued_on = models.DateField(default=timezone.localdate)
    description = models.TextField(blank=True)
    is_closed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-issued_on", "reference"]

    def __str__(self) -> str:
        return f"{self.reference}: {self.title}"


class RecallUnit(models.Model):
    class Status(models.TextChoices):
        AFFECTED = "affected", "Affected"
        REMEDIATED = "remediated", "Remediated"

    campaign = models.ForeignKey(RecallCampaign, on_delete=models.CASCADE, related_name="units")
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="recalls")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.AFFECTED)
    work_order = models.ForeignKey(
        WorkOrder, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["campaign", "asset__name"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "asset"], name="recall_unit_once")
        ]

    def __str__(self) -> str:
        return f"{self.campaign.reference}: {self.asset}"


class BatterySample(models.Model):
    """A tag's battery level, one row per tag and day (the day's last reading): the compact
    history behind trends and replacement forecasts."""

    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="battery_samples")
    day = models.DateField()
    battery_pct = models.FloatField()
    min_pct = models.FloatField()

    class Meta:
        ordering = ["tag", "day"]
        constraints = [models.UniqueConstraint(fields=["tag", "day"], name="battery_sample_daily")]

    def __str__(self) -> str:
        return f"{self.tag} {self.day}: {self.battery_pct:g} %"


auditlog.register(ZoneRule)
auditlog.register(StatusChange)
auditlog.register(ZoneGroup, m2m_fields={"zones"})
auditlog.register(ParLevel)
auditlog.register(Geofence)
auditlog.register(MaintenanceSchedule)
auditlog.register(WorkOrder)
auditlog.register(RecallCampaign)
auditlog.register(RecallUnit)

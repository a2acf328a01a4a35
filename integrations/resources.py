"""Asset import/export as CSV (django-import-export), by natural keys: the asset by its name,
the type by its slug, the department by its name, the tag by its tag id string (docs/exports.md).

Unknown types or departments, malformed tag ids, a tag already on another asset and invalid
statuses are errors of their row, shown in the admin's dry-run preview; nothing is written
until the preview is confirmed.
"""

from __future__ import annotations

from import_export import fields, resources, widgets

from hospital.models import Department
from tracking.models import Asset, AssetType, Tag
from tracking.tagids import canonical_tag_id


class NaturalKeyWidget(widgets.ForeignKeyWidget):
    """A foreign key by a natural key; an unknown value is an error of the row."""

    def __init__(self, model, field, label):
        super().__init__(model, field=field)
        self.label = label

    def clean(self, value, row=None, **kwargs):
        if value is None or str(value).strip() == "":
            return None
        try:
            return super().clean(str(value).strip(), row, **kwargs)
        except self.model.DoesNotExist:
            raise ValueError(f"unknown {self.label} {value!r}") from None


class TagField(fields.Field):
    """The asset's tag id: exported from the Tag row, imported into it after the asset saves."""

    def __init__(self):
        super().__init__(attribute="tag__tag_id", column_name="tag")

    def save(self, instance, row, is_m2m=False, **kwargs):
        raw = str(row.get(self.column_name) or "").strip()
        if not raw:
            instance._imported_tag = None
            return
        tag_id = canonical_tag_id(raw)
        holder = (
            Tag.objects.filter(tag_id=tag_id, asset__isnull=False)
            .values_list("asset__name", flat=True)
            .first()
        )
        if holder is not None and holder != instance.name:
            raise ValueError(f"tag {tag_id} is already on asset {holder!r}")
        instance._imported_tag = tag_id


class AssetResource(resources.ModelResource):
    asset_type = fields.Field(
        attribute="asset_type",
        column_name="type",
        widget=NaturalKeyWidget(AssetType, "slug", "asset type"),
    )
    department = fields.Field(
        attribute="department",
        column_name="department",
        widget=NaturalKeyWidget(Department, "name", "department"),
    )
    tag = TagField()

    class Meta:
        model = Asset
        import_id_fields = ["name"]
        fields = [
            "name",
            "asset_type",
            "department",
            "tag",
            "serial_number",
            "manufacturer",
            "model",
            "status",
            "notes",
        ]
        export_order = fields
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def after_save_instance(self, instance, row, **kwargs):
        if not hasattr(instance, "_imported_tag"):
            return
        wanted = instance._imported_tag
        Tag.objects.filter(asset=instance).exclude(tag_id=wanted or "").update(asset=None)
        if wanted:
            tag, _ = Tag.objects.get_or_create(tag_id=wanted, defaults={"asset": instance})
            if tag.asset_id != instance.pk:
                tag.asset = instance
                tag.save()

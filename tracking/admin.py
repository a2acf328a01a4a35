from django.contrib import admin

from tracking.models import Asset, AssetType, Scanner, Tag


@admin.register(Scanner)
class ScannerAdmin(admin.ModelAdmin):
    list_display = ("serial", "kind", "floor", "x", "y", "is_active", "last_seen_at")
    list_filter = ("kind", "is_active", "floor__building", "floor")
    search_fields = ("serial", "description")
    list_select_related = ("floor__building",)


@admin.register(AssetType)
class AssetTypeAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "mobility")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


class TagInline(admin.StackedInline):
    model = Tag
    extra = 0
    fields = ("tag_id", "battery_pct")
    readonly_fields = ("battery_pct",)


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ("name", "asset_type", "status", "department", "serial_number", "tag_id")
    list_filter = ("asset_type", "status", "department")
    search_fields = ("name", "serial_number", "model", "tag__tag_id")
    list_select_related = ("asset_type", "department", "tag")
    inlines = [TagInline]

    @admin.display(description="Tag", ordering="tag__tag_id")
    def tag_id(self, asset: Asset) -> str:
        tag = getattr(asset, "tag", None)
        return tag.tag_id if tag else "—"


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("tag_id", "kind", "asset", "battery_pct")
    list_filter = ("kind",)
    search_fields = ("tag_id", "asset__name")
    list_select_related = ("asset",)
    readonly_fields = ("kind",)

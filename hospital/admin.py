from django.contrib import admin

from hospital.models import Building, Department, Floor, Site, Zone


class ZoneInline(admin.TabularInline):
    model = Zone
    extra = 0
    fields = ("name", "kind", "department", "polygon")


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name",)


@admin.register(Building)
class BuildingAdmin(admin.ModelAdmin):
    list_display = ("name", "site")
    search_fields = ("name",)


@admin.register(Floor)
class FloorAdmin(admin.ModelAdmin):
    list_display = ("name", "building", "level", "width_m", "height_m", "zone_count")
    list_filter = ("building",)
    search_fields = ("name", "building__name")
    inlines = [ZoneInline]

    @admin.display(description="Zones")
    def zone_count(self, floor: Floor) -> int:
        return floor.zones.count()


@admin.register(Zone)
class ZoneAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "floor", "department")
    list_filter = ("kind", "floor__building", "floor", "department")
    search_fields = ("name", "floor__name")
    list_select_related = ("floor__building", "department")


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("name", "code")
    search_fields = ("name", "code")

"""Routes of the workflows: the API under /api/v1/workflows/ and the par board page."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from workflows import api, views

router = SimpleRouter()
router.register("zone-rules", api.ZoneRuleViewSet, basename="workflow-zone-rule")
router.register("status-changes", api.StatusChangeViewSet, basename="workflow-status-change")
router.register("zone-groups", api.ZoneGroupViewSet, basename="workflow-zone-group")
router.register("par-levels", api.ParLevelViewSet, basename="workflow-par-level")
router.register("geofences", api.GeofenceViewSet, basename="workflow-geofence")
router.register("maintenance/schedules", api.ScheduleViewSet, basename="workflow-schedule")
router.register("maintenance/work-orders", api.WorkOrderViewSet, basename="workflow-work-order")
router.register("maintenance/recalls", api.RecallViewSet, basename="workflow-recall")

PREFIX = "api/v1/workflows/"
urlpatterns = [
    path("par/", views.par_board, name="par-board"),
    path(f"{PREFIX}par-board/", api.ParBoardView.as_view(), name="workflow-par-board"),
    path(f"{PREFIX}maintenance/due/", api.DueView.as_view(), name="workflow-maintenance-due"),
    path(f"{PREFIX}maintenance/near-me/", api.NearMeView.as_view(), name="workflow-near-me"),
    path(f"{PREFIX}utilisation/", api.UtilisationView.as_view(), name="workflow-utilisation"),
    path(f"{PREFIX}device-health/tags/", api.TagHealthView.as_view(), name="workflow-tags"),
    path(
        f"{PREFIX}device-health/tags/<int:pk>/",
        api.TagHistoryView.as_view(),
        name="workflow-tag",
    ),
    path(
        f"{PREFIX}device-health/gateways/",
        api.GatewayHealthView.as_view(),
        name="workflow-gateways",
    ),
    path(PREFIX, include(router.urls)),
]

"""Routes of the read API, included under /api/v1/ by hospital.urls."""

from rest_framework.routers import SimpleRouter

from tracking.api import views

router = SimpleRouter(use_regex_path=False)
router.register("assets", views.AssetViewSet, basename="asset")
router.register("asset-types", views.AssetTypeViewSet, basename="asset-type")
router.register("buildings", views.BuildingViewSet, basename="building")
router.register("floors", views.FloorViewSet, basename="floor")
router.register("zones", views.ZoneViewSet, basename="zone")
router.register("scanners", views.ScannerViewSet, basename="scanner")

urlpatterns = router.urls

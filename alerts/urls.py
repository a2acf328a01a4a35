from rest_framework.routers import SimpleRouter

from alerts import api

router = SimpleRouter()
router.register("alerts", api.AlertViewSet, basename="alert")

urlpatterns = router.urls

from django.urls import path

from web import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("map/", views.floor_map, name="floor-map"),
    path("assets/<int:pk>/", views.asset_detail, name="asset-detail"),
    path("console/", views.console, name="console"),
    path("sensors/", views.sensors, name="sensors"),
    path("api/v1/find-nearest/", api.FindNearestView.as_view(), name="api-find-nearest"),
    path("api/v1/assets/<int:pk>/status/", api.AssetStatusView.as_view(), name="api-asset-status"),
]

"""The pages. Thin: each gathers what its template and script need and nothing else; live data
comes from the REST API and the websockets, the logic from tracking.* and alerts.*."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from hospital.models import Building, Zone
from tracking import quality
from tracking.api import queries
from tracking.confidence import Quality
from tracking.models import AssetStatus, AssetType
from tracking.status import StatusNotAllowed, allowed_statuses, change_status
from web.access import CLINICAL, CONSOLE, pages_for, role_required

STATUS_LABELS = dict(AssetStatus.choices)


def home(request):
    if not request.user.is_authenticated:
        return redirect("login")
    return render(request, "home.html", {"pages": pages_for(request.user)})


def _statuses(user) -> list[dict]:
    return [{"value": s, "label": STATUS_LABELS[s]} for s in allowed_statuses(user)]


@role_required(*CLINICAL)
@ensure_csrf_cookie
def floor_map(request):
    buildings = Building.objects.prefetch_related("floors").order_by("name")
    zones = Zone.objects.select_related("floor__building").order_by(
        "floor__building__name", "floor__level", "name"
    )
    config = {
        "buildings": [
            {
                "id": b.pk,
                "name": b.name,
                "floors": [
                    {"id": f.pk, "name": f.name, "level": f.level}
                    for f in sorted(b.floors.all(), key=lambda f: f.level)
                ],
            }
            for b in buildings
        ],
        "types": list(AssetType.objects.order_by("name").values("slug", "name")),
        "statusLabels": STATUS_LABELS,
        "statuses": _statuses(request.user),
        "zones": [
            {"id": z.pk, "name": z.name, "kind": z.kind, "floor_id": z.floor_id} for z in zones
        ],
        "location": {"staleAfterS": settings.WARDWISE["LOCATION_STALE_AFTER_S"]},
        "urls": {
            "floor": "/api/v1/floors/{id}/",
            "assets": "/api/v1/assets/",
            "nearest": reverse("api-find-nearest"),
            "status": "/api/v1/assets/{id}/status/",
            "detail": "/assets/{id}/",
            "socket": "/ws/floors/{id}/",
        },
    }
    return render(request, "web/map.html", {"config": config, "zones": zones})


@role_required(*CLINICAL)
@require_http_methods(["GET", "POST"])
def asset_detail(request, pk: int):
    """Works without JavaScript: the status buttons are a plain form posted here."""
    asset = get_object_or_404(queries.assets(), pk=pk)
    if request.method == "POST":
        try:
            change_status(asset, request.POST.get("status", ""), request.user)
        except StatusNotAllowed as exc:
            messages.error(request, str(exc))
        else:
            label = STATUS_LABELS[request.POST["status"]]
            messages.success(request, f"{asset.name} is now marked “{label}”.")
        return redirect("asset-detail", pk=pk)
    location = getattr(asset, "location", None)
    return render(
        request,
        "web/asset.html",
        {
            "asset": asset,
            "location": location,
            "where": _where(location),
            "statuses": _statuses(request.user),
            "status_label": STATUS_LABELS.get(asset.status, asset.status),
        },
    )


REASON_TEXT = {
    "not-heard": "not heard recently",
    "no-recent-estimate": "no recent position",
    "scanners-offline": "the room's scanners are offline",
    "no-zone": "not in a room",
    "confidence-unknown": "confidence not recorded",
    "low-confidence": "weak evidence for the room",
    "few-scanners": "heard by too few scanners",
    "poor-accuracy": "position too imprecise",
}


def _where(location) -> dict | None:
    """How sure the room is (tracking.confidence), for the template: the room when confirmed,
    otherwise the last confirmed room and time with the current confidence, and why."""
    if location is None:
        return None
    judged = quality.judge()(location)
    probability = location.zone_probability
    return {
        "quality": judged.quality.value,
        "confirmed": judged.quality is Quality.CONFIRMED,
        "confidence_pct": round(probability * 100) if probability is not None else None,
        "reasons": ", ".join(REASON_TEXT[r] for r in judged.reasons if r in REASON_TEXT),
    }


@role_required(*CONSOLE)
@ensure_csrf_cookie
def console(request):
    config = {
        "urls": {
            "socket": "/ws/alerts/",
            "sensors": "/api/v1/sensors/",
            "readings": "/api/v1/sensors/{serial}/readings/",
            "acknowledge": "/api/v1/alerts/{id}/acknowledge/",
            "resolve": "/api/v1/alerts/{id}/resolve/",
        }
    }
    return render(request, "web/console.html", {"config": config})


@role_required(*CONSOLE)
def sensors(request):
    config = {
        "urls": {
            "sensors": "/api/v1/sensors/",
            "readings": "/api/v1/sensors/{serial}/readings/",
        }
    }
    return render(request, "web/sensors.html", {"config": config})

"""The admin biomed staff use: every list, search and change page renders."""

from io import StringIO
from pathlib import Path

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse

DEMO_SITE = Path(__file__).resolve().parents[2] / "hospital" / "fixtures" / "demo_site.json"


@pytest.fixture
def demo_site(db):
    call_command("load_site", str(DEMO_SITE), stdout=StringIO())


@pytest.mark.parametrize(
    "model",
    [
        m
        for m in admin.site._registry
        if m._meta.app_label in {"hospital", "tracking", "environment"}
    ],
    ids=lambda m: m._meta.label,
)
def test_changelist_search_and_change_pages_render(admin_client, demo_site, model):
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert admin_client.get(changelist).status_code == 200
    assert admin_client.get(changelist, {"q": "1"}).status_code == 200
    instance = model.objects.first()
    if instance is not None:
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[instance.pk])
        assert admin_client.get(change).status_code == 200


def test_floor_page_shows_its_zones_inline(admin_client, demo_site):
    from hospital.models import Floor

    floor = Floor.objects.first()
    response = admin_client.get(reverse("admin:hospital_floor_change", args=[floor.pk]))
    assert response.status_code == 200
    assert floor.zones.first().name in response.content.decode()


def test_anonymous_users_are_sent_to_the_login_page(client, db):
    response = client.get(reverse("admin:tracking_asset_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]

"""Who may read: people with a clinical role (session); scanner health only for the teams who
maintain gateways; never a device token, never anonymous."""

import pytest
from rest_framework.test import APIClient

from hospital.devices import issue_token
from hospital.roles import ADMIN, BIOMED, FACILITIES, NURSE
from tests.factories import ScannerFactory

pytestmark = pytest.mark.services

CLINICAL_ENDPOINTS = [
    "/api/v1/assets/",
    "/api/v1/assets/{asset}/",
    "/api/v1/assets/{asset}/history/",
    "/api/v1/assets/{asset}/stays/",
    "/api/v1/asset-types/",
    "/api/v1/buildings/",
    "/api/v1/floors/",
    "/api/v1/floors/{floor}/",
    "/api/v1/zones/",
]
SCANNER_ENDPOINTS = ["/api/v1/scanners/", "/api/v1/scanners/{scanner}/"]
ALL_ENDPOINTS = CLINICAL_ENDPOINTS + SCANNER_ENDPOINTS


@pytest.fixture
def urls(site):
    scanner = ScannerFactory(floor=site.floor)
    ids = {"asset": site.assets["Pump A"].pk, "floor": site.floor.pk, "scanner": scanner.pk}
    return {template: template.format(**ids) for template in ALL_ENDPOINTS}, scanner


@pytest.mark.parametrize("endpoint", ALL_ENDPOINTS)
def test_anonymous_is_refused(urls, endpoint):
    response = APIClient().get(urls[0][endpoint])
    assert response.status_code in (401, 403)


@pytest.mark.parametrize("endpoint", ALL_ENDPOINTS)
def test_a_device_token_is_refused(urls, endpoint):
    token = issue_token(scanner=urls[1])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(urls[0][endpoint]).status_code == 403


@pytest.mark.parametrize("endpoint", CLINICAL_ENDPOINTS)
@pytest.mark.parametrize("role", [NURSE, BIOMED, FACILITIES, ADMIN])
def test_clinical_roles_read(client_for, urls, endpoint, role):
    assert client_for(role).get(urls[0][endpoint]).status_code == 200


@pytest.mark.parametrize("endpoint", ALL_ENDPOINTS)
def test_a_person_without_a_role_is_refused(client_for, urls, endpoint):
    assert client_for().get(urls[0][endpoint]).status_code == 403


@pytest.mark.parametrize("endpoint", SCANNER_ENDPOINTS)
def test_scanner_health_is_for_biomed_facilities_and_admins(client_for, urls, endpoint):
    assert client_for(NURSE).get(urls[0][endpoint]).status_code == 403
    for role in (BIOMED, FACILITIES, ADMIN):
        assert client_for(role).get(urls[0][endpoint]).status_code == 200
    assert client_for(superuser=True).get(urls[0][endpoint]).status_code == 200


def test_the_api_is_read_only(nurse, urls):
    assert nurse.post("/api/v1/assets/", {"name": "x"}).status_code == 405

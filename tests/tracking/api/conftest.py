import pytest
from rest_framework.test import APIClient

from hospital.roles import BIOMED, FACILITIES, NURSE
from tests.tracking.readside import person, ward


@pytest.fixture
def site(db):
    return ward()


@pytest.fixture
def client_for(db):
    """An API client signed in (session) as a fresh user with the given roles."""

    def make(*roles: str, superuser: bool = False) -> APIClient:
        name = "-".join(roles) or ("root" if superuser else "nobody")
        client = APIClient()
        client.force_login(person(name, *roles, superuser=superuser))
        return client

    return make


@pytest.fixture
def nurse(client_for):
    return client_for(NURSE)


@pytest.fixture
def biomed(client_for):
    return client_for(BIOMED)


@pytest.fixture
def facilities(client_for):
    return client_for(FACILITIES)

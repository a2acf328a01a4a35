import pytest
from django.test import Client

from hospital.roles import ADMIN, BIOMED, FACILITIES, NURSE
from tests.web.support import person


@pytest.fixture
def signed_in(db):
    """A browser-like client signed in as a fresh person with the given roles."""

    def make(*roles: str, staff: bool = False, superuser: bool = False) -> Client:
        name = "-".join(roles) or ("root" if superuser else "nobody")
        client = Client()
        client.force_login(person(name, *roles, staff=staff, superuser=superuser))
        return client

    return make


@pytest.fixture
def nurse(signed_in):
    return signed_in(NURSE)


@pytest.fixture
def biomed(signed_in):
    return signed_in(BIOMED, staff=True)


@pytest.fixture
def facilities(signed_in):
    return signed_in(FACILITIES)


@pytest.fixture
def admin_person(signed_in):
    return signed_in(ADMIN, staff=True, superuser=True)

"""Shared fixtures. CI must run against the real PostgreSQL and Redis: refuse anything else."""

import os

import pytest
from django.conf import settings


def pytest_configure(config):
    if os.environ.get("CI"):
        engine = settings.DATABASES["default"]["ENGINE"]
        if engine != "django.db.backends.postgresql" or not settings.REDIS_URL:
            raise pytest.UsageError(
                "CI runs the tests against PostgreSQL and Redis: set DATABASE_URL and REDIS_URL "
                "(make test does)"
            )


@pytest.fixture
def redis_bus():
    """The reading bus's Redis (the real one when REDIS_URL is set), emptied around the test."""
    from tracking import bus

    client = bus.client()
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def isolated_metrics(monkeypatch):
    """Metrics under a key prefix of this test process, emptied around the test."""
    from hospital import observability

    monkeypatch.setattr(observability, "KEY_PREFIX", f"ww:metrics:test:{os.getpid()}")
    observability.reset()
    yield
    observability.reset()

"""Settings come from the environment with documented defaults."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; from django.conf import settings; django.setup();"
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'],"
    "'layer': settings.CHANNEL_LAYERS['default']['BACKEND'],"
    "'eager': settings.CELERY_TASK_ALWAYS_EAGER, 'broker': settings.CELERY_BROKER_URL,"
    "'debug': settings.DEBUG, 'hosts': settings.ALLOWED_HOSTS, 'tz': settings.TIME_ZONE,"
    "'use_tz': settings.USE_TZ}))"
)


def settings_with(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    clean.update(DJANGO_SETTINGS_MODULE="hospital.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_the_defaults_are_the_embedded_demo_setup():
    result = settings_with()
    values = json.loads(result.stdout)
    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["layer"] == "channels.layers.InMemoryChannelLayer"
    assert values["eager"] is True
    assert values["debug"] is False
    assert values["tz"] == "UTC"
    assert values["use_tz"] is True


def test_database_and_redis_urls_switch_to_the_real_services():
    result = settings_with(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/wardwise",
        REDIS_URL="redis://127.0.0.1:6379/3",
        ALLOWED_HOSTS="rtls.example.org, 10.0.0.5",
        DEBUG="true",
    )
    values = json.loads(result.stdout)
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["layer"] == "channels_redis.core.RedisChannelLayer"
    assert values["eager"] is False
    assert values["broker"] == "redis://127.0.0.1:6379/3"
    assert values["hosts"] == ["rtls.example.org", "10.0.0.5"]
    assert values["debug"] is True


def test_hot_path_statements_are_prepared_after_two_runs_unless_turned_off():
    probe = (
        "import django; from django.conf import settings; django.setup();"
        "print(settings.DATABASES['default']['OPTIONS']['prepare_threshold'])"
    )

    def threshold(**env) -> str:
        clean = {k: v for k, v in os.environ.items() if k != "DATABASE_PREPARE_THRESHOLD"}
        clean.update(
            DJANGO_SETTINGS_MODULE="hospital.settings",
            DATABASE_URL="postgres://postgres@127.0.0.1:5432/wardwise",
            **env,
        )
        result = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env=clean, capture_output=True, text=True
        )
        return result.stdout.strip() or result.stderr

    assert threshold() == "2"
    assert threshold(DATABASE_PREPARE_THRESHOLD="0") == "0"
    assert threshold(DATABASE_PREPARE_THRESHOLD="off") == "None"
    assert "DATABASE_PREPARE_THRESHOLD='often' is not an integer" in threshold(
        DATABASE_PREPARE_THRESHOLD="often"
    )


def test_a_malformed_boolean_is_refused_with_its_name():
    result = settings_with(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_production_requires_a_secret_key():
    result = settings_with(WARDWISE_PRODUCTION="true", ALLOWED_HOSTS="rtls.example.org")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_settings_pass_the_deployment_checklist():
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        WARDWISE_PRODUCTION="true",
        SECRET_KEY="x7#Kq2!vR9@pL4$wZ8^nB3&mT6*yH1(cF5)jD0_sG-eA+uQ=iO~rN>tV<kM?xW",
        ALLOWED_HOSTS="rtls.example.org",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_an_out_of_range_location_threshold_is_refused_with_its_name():
    result = settings_with(WARDWISE_LOCATION_CONFIRM_PROBABILITY="1.5")
    assert result.returncode != 0
    assert "WARDWISE_LOCATION_CONFIRM_PROBABILITY=1.5 must be in (0, 1]" in result.stderr
    result = settings_with(WARDWISE_LOCATION_STALE_AFTER_S="soon")
    assert "WARDWISE_LOCATION_STALE_AFTER_S='soon' is not an integer" in result.stderr


def gc_thresholds_from(monkeypatch, value):
    from hospital.settings import env_gc_thresholds

    if value is None:
        monkeypatch.delenv("WARDWISE_GC_THRESHOLDS", raising=False)
    else:
        monkeypatch.setenv("WARDWISE_GC_THRESHOLDS", value)
    return env_gc_thresholds("WARDWISE_GC_THRESHOLDS", (10_000, 10, 10))


@pytest.mark.parametrize(
    ("value", "thresholds"),
    [(None, (10_000, 10, 10)), ("", (10_000, 10, 10)), ("50000, 20, 10", (50_000, 20, 10)),
     ("Off", None)],
)  # fmt: skip
def test_worker_gc_thresholds_are_three_positive_integers_or_off(monkeypatch, value, thresholds):
    assert gc_thresholds_from(monkeypatch, value) == thresholds


@pytest.mark.parametrize("value", ["10000,10", "10000,10,0", "lots", "10000,10,ten"])
def test_bad_worker_gc_thresholds_are_refused_by_name(monkeypatch, value):
    with pytest.raises(ImproperlyConfigured, match=r"WARDWISE_GC_THRESHOLDS=.* 10000,10,10"):
        gc_thresholds_from(monkeypatch, value)

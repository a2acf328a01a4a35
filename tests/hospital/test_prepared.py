"""hospital.prepared: hot-path statements bound server-side and prepared once per connection,
while behaving towards the rest of the code like Django's own cursors. Real PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from hospital import prepared

pytestmark = pytest.mark.django_db


def run(sql: str, params: list) -> list[tuple]:
    with prepared.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


def test_a_statement_is_prepared_once_it_ran_the_threshold_times(settings):
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    sql = "SELECT %s::int + 40 AS wardwise_prepared_probe"
    for value in range(threshold):
        assert not [s for s in prepared_statements() if "wardwise_prepared_probe" in s]
        assert run(sql, [value]) == [(value + 40,)]
    assert run(sql, [2]) == [(42,)]
    assert [s for s in prepared_statements() if "wardwise_prepared_probe" in s]


def test_its_errors_are_djangos_so_the_callers_handlers_see_them():
    with pytest.raises(DatabaseError, match="no_such_table"), transaction.atomic():
        run("SELECT * FROM no_such_table WHERE id = %s", [1])


def test_its_statements_show_in_captured_queries_even_when_prepared():
    sql = "SELECT %s::int AS wardwise_captured_probe"
    with CaptureQueriesContext(connection) as queries:
        for value in range(5):
            run(sql, [value])
    assert [q["sql"] for q in queries.captured_queries] == [sql] * 5

"""hospital.prepared: hot-path statements bound server-side and prepared once per connection,
while behaving towards the rest of the code like Django's own cursors. Real PostgreSQL."""

from __future__ import annotations

import psycopg
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


@pytest.fixture
def scratch():
    """A table of numbers, for the pipeline's writes."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE wardwise_scratch (n int PRIMARY KEY)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE wardwise_scratch")


def insert(value: int) -> None:
    prepared.execute("INSERT INTO wardwise_scratch VALUES (%s)", [value])


def count() -> int:
    return prepared.rows("SELECT count(*) FROM wardwise_scratch", [])[0][0]


def test_writes_in_a_pipeline_are_all_there_for_a_read_in_it_and_after_it(scratch):
    with transaction.atomic(), prepared.pipelined():
        insert(1)
        prepared.execute("INSERT INTO wardwise_scratch SELECT unnest(%b::int[])", [[2, 3]])
        assert count() == 3
        prepared.execute("DELETE FROM wardwise_scratch WHERE n = %s", [1])
    assert run("SELECT n FROM wardwise_scratch ORDER BY n", []) == [(2,), (3,)]


def test_the_block_runs_in_psycopgs_pipeline_mode(scratch):
    with transaction.atomic(), prepared.pipelined():
        insert(1)
        assert connection.connection.info.pipeline_status == psycopg.pq.PipelineStatus.ON
    assert connection.connection.info.pipeline_status == psycopg.pq.PipelineStatus.OFF


def test_a_failing_write_in_a_pipeline_raises_djangos_error_and_rolls_the_block_back(scratch):
    """A statement does not wait for the answer to the one before, so a failure is raised by a
    later statement or at the block's end; either way as Django's error, and the transaction
    rolls back as a whole."""
    with pytest.raises(DatabaseError, match="duplicate key"):
        write_a_duplicate_in_a_pipeline()
    assert count() == 0


def write_a_duplicate_in_a_pipeline() -> None:
    with transaction.atomic(), prepared.pipelined():
        insert(1)
        insert(1)
        insert(2)

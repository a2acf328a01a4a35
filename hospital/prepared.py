"""Hot-path statements bound server-side, so PostgreSQL can keep their plans.

Django's PostgreSQL cursors bind parameters on the client (psycopg's `ClientCursor`): every
statement reaches the server as new text, to be parsed and planned again, after psycopg has
quoted every parameter in Python. On a path that runs the same few statements hundreds of times
a second (a cold-chain upload: lock the state, insert the reading, update the state) preparing
them saved about a quarter of PostgreSQL's CPU per upload and a tenth of the web process's
(means of four interleaved pairs, docs/cold-chain.md). A cursor of psycopg's own class on
Django's connection binds server-side, and psycopg prepares a statement once its text has run
`DATABASE_PREPARE_THRESHOLD` times on the connection (README, Configuration); the pooled
connections keep them. The cursor is wrapped as Django wraps its own, so these statements still
raise Django's database exceptions (the `503` of an unreachable database) and show in query
logging and `CaptureQueriesContext`.
"""

from __future__ import annotations

from contextlib import contextmanager

import psycopg
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper


class _LoggedCursor(CursorDebugWrapper):
    """Logs the statement as written: Django reads a client-side cursor's last query, which a
    prepared statement does not have."""

    @contextmanager
    def debug_sql(self, sql=None, params=None, use_last_executed_query=False, many=False):
        with super().debug_sql(sql, params, use_last_executed_query=False, many=many):
            yield


def table(model) -> str:
    """The model's table name, quoted for the statements written here and by the callers."""
    return connection.ops.quote_name(model._meta.db_table)


def cursor():
    """A server-side binding cursor on the default connection (PostgreSQL only)."""
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = psycopg.Cursor(connection.connection)
    if connection.queries_logged:
        return _LoggedCursor(raw, connection)
    return connection.make_cursor(raw)


def rows(sql: str, params: list) -> list[tuple]:
    """The rows of a statement that returns rows, run on `cursor()`. Inside `pipelined()` this
    waits for the statements queued before it too."""
    with cursor() as prepared_cursor:
        prepared_cursor.execute(sql, params)
        return prepared_cursor.fetchall()


def execute(sql: str, params: list) -> None:
    """Run a statement that returns no rows on `cursor()`; inside `pipelined()` it is only
    sent, and its error (if any) is raised by a later statement of the block or at its end."""
    with cursor() as prepared_cursor:
        prepared_cursor.execute(sql, params)


@contextmanager
def pipelined():
    """psycopg's pipeline mode on the default connection (PostgreSQL; elsewhere nothing): the
    statements of the block go out without waiting for each other's answers, so a run of writes
    costs one round trip instead of one each. Errors still come out as Django's."""
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield

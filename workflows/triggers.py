"""The database side of the status history: a trigger on the asset table that writes a history
row for every change of `tracking_asset.status`, whatever made it: Wardwise's own paths, a
queryset `.update()`, `bulk_update`, a script, `psql`. PostgreSQL and SQLite, same behaviour.

The row says "changed outside Wardwise workflows" and waits to be reconciled
(`needs_reconciling`); Wardwise's own paths attribute it in the same transaction
(workflows.status), so only changes made outside are left for the reconciliation to audit.

Installed by migration 0004 and checked after every `migrate` (SQLite drops a table's triggers
when a migration rebuilds the table; PostgreSQL keeps them, so there the check finds it and does
nothing)."""

from __future__ import annotations

NAME = "wardwise_asset_status_history"
OUTSIDE_NOTE = "changed outside Wardwise workflows"

# Plain literals, no interpolation; the note is OUTSIDE_NOTE.
POSTGRESQL_CREATE = [
    """
CREATE OR REPLACE FUNCTION wardwise_asset_status_history() RETURNS trigger AS $$
BEGIN
    INSERT INTO workflows_statuschange
        (asset_id, at, old_status, new_status, rule_name, note, source, needs_reconciling)
    VALUES (NEW.id, statement_timestamp(), OLD.status, NEW.status, '',
            'changed outside Wardwise workflows', 'outside', TRUE);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
""",
    "DROP TRIGGER IF EXISTS wardwise_asset_status_history ON tracking_asset",
    """
CREATE TRIGGER wardwise_asset_status_history
    AFTER UPDATE OF status ON tracking_asset
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION wardwise_asset_status_history()
""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS wardwise_asset_status_history ON tracking_asset",
    "DROP FUNCTION IF EXISTS wardwise_asset_status_history()",
]
POSTGRESQL_EXISTS = "SELECT 1 FROM pg_trigger WHERE tgname = %s AND NOT tgisinternal"

# Django stores SQLite datetimes as naive UTC text; strftime('%f') is seconds with milliseconds.
SQLITE_CREATE = [
    "DROP TRIGGER IF EXISTS wardwise_asset_status_history",
    """
CREATE TRIGGER wardwise_asset_status_history
    AFTER UPDATE OF status ON tracking_asset
    FOR EACH ROW WHEN OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO workflows_statuschange
        (asset_id, at, old_status, new_status, rule_name, note, source, needs_reconciling)
    VALUES (NEW.id, strftime('%Y-%m-%d %H:%M:%f', 'now'), OLD.status, NEW.status, '',
            'changed outside Wardwise workflows', 'outside', 1);
END
""",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS wardwise_asset_status_history"]
SQLITE_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = %s"


def _statements(vendor: str, create: bool) -> list[str]:
    if vendor == "postgresql":
        return POSTGRESQL_CREATE if create else POSTGRESQL_DROP
    if vendor == "sqlite":
        return SQLITE_CREATE if create else SQLITE_DROP
    raise NotImplementedError(f"no status-history trigger for the {vendor} database")


def _run(connection, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def install(connection) -> None:
    _run(connection, _statements(connection.vendor, create=True))


def uninstall(connection) -> None:
    _run(connection, _statements(connection.vendor, create=False))


def installed(connection) -> bool:
    query = POSTGRESQL_EXISTS if connection.vendor == "postgresql" else SQLITE_EXISTS
    with connection.cursor() as cursor:
        cursor.execute(query, [NAME])
        return cursor.fetchone() is not None


MIGRATION = ("workflows", "0004_status_history_trigger")


def ensure_installed(sender=None, using="default", **kwargs) -> None:
    """post_migrate: put the trigger back if a migration dropped it (SQLite rebuilds a table to
    alter it). Only while migration 0004 is applied (not after migrating back past it)."""
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    connection = connections[using]
    if connection.vendor not in ("postgresql", "sqlite"):
        return
    if MIGRATION not in MigrationRecorder(connection).applied_migrations():
        return
    if not installed(connection):
        install(connection)

"""Every change of an asset's status is written to the status history by the database itself
(workflows/triggers.py), on PostgreSQL and SQLite: bulk `.update()` calls, scripts and SQL
consoles included. Wardwise's own paths attribute the row they caused; the rest is audited by the
periodic reconciliation as "changed outside Wardwise workflows" (docs/workflows.md)."""

from django.db import migrations


def install(apps, schema_editor):
    from workflows import triggers

    triggers.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    from workflows import triggers

    triggers.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0001_initial"),
        ("workflows", "0003_status_sources_and_maintenance_alerts"),
    ]
    operations = [migrations.RunPython(install, uninstall)]

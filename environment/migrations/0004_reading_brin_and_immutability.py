"""PostgreSQL only: a BRIN index on reading time (readings arrive roughly in time order, so a tiny
BRIN index serves cross-sensor time ranges; per-sensor ranges use the (sensor, ts) unique index),
and a trigger that refuses UPDATE and DELETE of readings: they are compliance records."""

from django.db import migrations

FORWARD = [
    "CREATE INDEX IF NOT EXISTS environment_reading_ts_brin "
    "ON environment_environmentreading USING brin (ts)",
    """
    CREATE OR REPLACE FUNCTION environment_reading_immutable() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'environment readings are immutable: annotate instead'
            USING ERRCODE = 'integrity_constraint_violation';
    END;
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS environment_reading_immutable ON environment_environmentreading",
    "CREATE TRIGGER environment_reading_immutable BEFORE UPDATE OR DELETE "
    "ON environment_environmentreading FOR EACH ROW EXECUTE FUNCTION environment_reading_immutable()",
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS environment_reading_immutable ON environment_environmentreading",
    "DROP FUNCTION IF EXISTS environment_reading_immutable()",
    "DROP INDEX IF EXISTS environment_reading_ts_brin",
]


def run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("environment", "0003_readings_state_gateway")]
    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD))]

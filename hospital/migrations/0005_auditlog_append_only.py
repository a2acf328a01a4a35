"""The audit trail is append-only in the database itself: on PostgreSQL a trigger refuses
DELETE of audit entries and any UPDATE except auditlog's own SET NULL of the actor when a user
row is deleted (people are deactivated, not deleted, but the constraint must not block it).
TRUNCATE (test-database flushes) is not affected. SQLite (the demo) has no such trigger."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION wardwise_auditlog_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id')
       AND NEW.actor_id IS NULL THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS wardwise_auditlog_append_only ON auditlog_logentry;
CREATE TRIGGER wardwise_auditlog_append_only
    BEFORE UPDATE OR DELETE ON auditlog_logentry
    FOR EACH ROW EXECUTE FUNCTION wardwise_auditlog_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS wardwise_auditlog_append_only ON auditlog_logentry;
DROP FUNCTION IF EXISTS wardwise_auditlog_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("hospital", "0004_devicetoken"), ("auditlog", "0017_add_actor_email")]
    operations = [migrations.RunPython(create, drop)]

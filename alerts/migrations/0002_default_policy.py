"""A default escalation policy, so alerts reach someone out of the box: facilities staff first,
administrators when nobody has acknowledged after 15 minutes; a reminder every 10 minutes."""

from django.db import migrations


def create(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Policy = apps.get_model("alerts", "EscalationPolicy")
    Tier = apps.get_model("alerts", "EscalationTier")
    policy, created = Policy.objects.get_or_create(
        name="Default",
        defaults={
            "is_default": True,
            "repeat_every_min": 10,
            "description": "Facilities first; administrators after 15 minutes unacknowledged.",
        },
    )
    if not created:
        return
    for position, (after_min, group_name) in enumerate([(0, "facilities"), (15, "admin")]):
        tier = Tier.objects.create(
            policy=policy, position=position, after_min=after_min, channels=["log", "email"]
        )
        group, _ = Group.objects.get_or_create(name=group_name)
        tier.groups.add(group)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial"), ("hospital", "0003_roles")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]

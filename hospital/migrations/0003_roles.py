"""The role groups (hospital.roles) exist in every installation."""

from django.db import migrations

ROLES = ("nurse", "biomed", "facilities", "admin")


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role in ROLES:
        Group.objects.get_or_create(name=role)


class Migration(migrations.Migration):
    dependencies = [("hospital", "0002_zone_kind_blood_bank"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]

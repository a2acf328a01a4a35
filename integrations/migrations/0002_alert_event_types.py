from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('integrations', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='webhookdelivery',
            name='event_type',
            field=models.CharField(choices=[('asset.zone.entered', 'Asset entered a zone'), ('asset.zone.left', 'Asset left a zone'), ('asset.missing', 'Asset missing'), ('alert.opened', 'Alert opened'), ('alert.escalated', 'Alert escalated'), ('alert.acknowledged', 'Alert acknowledged'), ('alert.resolved', 'Alert resolved')], max_length=40),
        ),
    ]

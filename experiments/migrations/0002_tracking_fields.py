# Experiment tracking, step 1 of 3: experiment columns and tags; runs get the columns that step 2
# fills (an MLflow run id, epoch-millisecond times). Schema and data changes are separate
# migrations: PostgreSQL refuses to ALTER a table with pending trigger events in one transaction.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0001_initial"),
    ]

    operations = [
        # --- experiments -----------------------------------------------------------------------
        migrations.AlterField(
            model_name="experiment",
            name="name",
            field=models.CharField(max_length=500, unique=True),
        ),
        migrations.AddField(
            model_name="experiment",
            name="artifact_location",
            field=models.CharField(blank=True, max_length=1000),
        ),
        migrations.AddField(
            model_name="experiment",
            name="updated_at",
            field=models.DateTimeField(auto_now=True, default=django.utils.timezone.now),
            preserve_default=False,
        ),
        migrations.CreateModel(
            name="ExperimentTag",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=250)),
                ("value", models.TextField(blank=True)),
                ("experiment", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="tags", to="experiments.experiment")),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("experiment", "key"), name="experiment_tag_key")],
            },
        ),
        # --- runs: an MLflow run id and epoch-millisecond times, existing rows converted ----------
        migrations.AddField(
            model_name="run",
            name="run_uuid",
            field=models.CharField(max_length=32, null=True),
        ),
        migrations.AddField(
            model_name="run",
            name="start_time_ms",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="run",
            name="end_time_ms",
            field=models.BigIntegerField(blank=True, null=True),
        ),
    ]

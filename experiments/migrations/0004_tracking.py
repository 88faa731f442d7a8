# Experiment tracking, step 3 of 3: the converted run columns replace the old ones; nesting,
# lifecycle, lineage to feature views; params, metric history, latest metrics, tags, artifacts.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import experiments.models


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0003_run_times_ms"),
        ("features", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveField(model_name="run", name="start_time"),
        migrations.RemoveField(model_name="run", name="end_time"),
        migrations.RenameField(model_name="run", old_name="start_time_ms", new_name="start_time"),
        migrations.RenameField(model_name="run", old_name="end_time_ms", new_name="end_time"),
        migrations.AlterField(
            model_name="run",
            name="start_time",
            field=models.BigIntegerField(help_text="epoch milliseconds"),
        ),
        migrations.AlterField(
            model_name="run",
            name="end_time",
            field=models.BigIntegerField(blank=True, help_text="epoch milliseconds", null=True),
        ),
        migrations.AlterField(
            model_name="run",
            name="run_uuid",
            field=models.CharField(default=experiments.models.run_uuid_new, editable=False, max_length=32, unique=True),
        ),
        migrations.AlterField(
            model_name="run",
            name="name",
            field=models.CharField(blank=True, max_length=250),
        ),
        migrations.AddField(
            model_name="run",
            name="user_name",
            field=models.CharField(blank=True, max_length=256),
        ),
        migrations.AddField(
            model_name="run",
            name="created_by",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="experiment_runs", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name="run",
            name="source",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name="run",
            name="parent",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="children", to="experiments.run"),
        ),
        migrations.AddField(
            model_name="run",
            name="lifecycle",
            field=models.CharField(choices=[("active", "Active"), ("deleted", "Deleted")], default="active", max_length=8),
        ),
        migrations.AddField(
            model_name="run",
            name="feature_view",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="runs", to="features.featureview"),
        ),
        migrations.AddField(
            model_name="run",
            name="training_set",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(fields=["experiment", "lifecycle", "-start_time"], name="run_experiment_start"),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(fields=["start_time"], name="run_start_time"),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(fields=["status"], name="run_status"),
        ),
        # --- what runs log ------------------------------------------------------------------------
        migrations.CreateModel(
            name="Param",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=250)),
                ("value", models.TextField(blank=True)),
                ("run", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="params", to="experiments.run")),
            ],
            options={
                "indexes": [models.Index(fields=["key"], name="param_key")],
                "constraints": [models.UniqueConstraint(fields=("run", "key"), name="param_run_key")],
            },
        ),
        migrations.CreateModel(
            name="RunTag",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=250)),
                ("value", models.TextField(blank=True)),
                ("run", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="tags", to="experiments.run")),
            ],
            options={
                "indexes": [models.Index(fields=["key"], name="run_tag_key_index")],
                "constraints": [models.UniqueConstraint(fields=("run", "key"), name="run_tag_key")],
            },
        ),
        migrations.CreateModel(
            name="Metric",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("key", models.CharField(max_length=250)),
                ("value", models.FloatField()),
                ("is_nan", models.BooleanField(default=False)),
                ("step", models.BigIntegerField(default=0)),
                ("timestamp", models.BigIntegerField(help_text="epoch milliseconds")),
                ("run", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="metrics", to="experiments.run")),
            ],
            options={
                "indexes": [models.Index(fields=["run", "key", "step"], name="metric_run_key_step")],
            },
        ),
        migrations.CreateModel(
            name="LatestMetric",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=250)),
                ("value", models.FloatField()),
                ("is_nan", models.BooleanField(default=False)),
                ("step", models.BigIntegerField(default=0)),
                ("timestamp", models.BigIntegerField(help_text="epoch milliseconds")),
                ("run", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="latest_metrics", to="experiments.run")),
            ],
            options={
                "indexes": [models.Index(fields=["key", "value"], name="latest_metric_key_value")],
                "constraints": [models.UniqueConstraint(fields=("run", "key"), name="latest_metric_run_key")],
            },
        ),
        migrations.CreateModel(
            name="Artifact",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("path", models.CharField(max_length=1024)),
                ("sha256", models.CharField(db_index=True, max_length=64)),
                ("size_bytes", models.BigIntegerField()),
                ("content_type", models.CharField(blank=True, max_length=127)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("run", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="artifacts", to="experiments.run")),
            ],
            options={
                "ordering": ["path"],
                "constraints": [models.UniqueConstraint(fields=("run", "path"), name="artifact_run_path")],
            },
        ),
    ]

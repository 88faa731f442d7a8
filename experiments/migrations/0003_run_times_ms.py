# Experiment tracking, step 2 of 3: existing runs get a run id, and their times in epoch ms.

import uuid

from django.db import migrations


def _epoch_ms(value):
    return None if value is None else int(value.timestamp() * 1000)


def runs_forward(apps, schema_editor):
    Run = apps.get_model("experiments", "Run")
    for run in Run.objects.all().only("pk", "start_time", "end_time"):
        Run.objects.filter(pk=run.pk).update(
            run_uuid=uuid.uuid4().hex,
            start_time_ms=_epoch_ms(run.start_time) or 0,
            end_time_ms=_epoch_ms(run.end_time),
        )


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0002_tracking_fields"),
    ]

    operations = [
        migrations.RunPython(runs_forward, migrations.RunPython.noop),
    ]

"""FeatureRow.values: jsonb -> double precision[] on PostgreSQL (SQLite keeps its JSON text)."""

from django.db import migrations

import features.fields

TO_ARRAY = """
ALTER TABLE features_featurerow ALTER COLUMN "values" TYPE double precision[]
USING translate("values"::text, '[]', '{}')::double precision[]
"""
TO_JSON = """
ALTER TABLE features_featurerow ALTER COLUMN "values" TYPE jsonb
USING replace(array_to_json("values")::text, '"NaN"', 'null')::jsonb
"""


def forward(apps, schema_editor) -> None:  # noqa: ANN001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TO_ARRAY)


def backward(apps, schema_editor) -> None:  # noqa: ANN001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TO_JSON)


class Migration(migrations.Migration):
    dependencies = [("features", "0003_feature_store")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="featurerow",
                    name="values",
                    field=features.fields.FloatListField(),
                )
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        )
    ]

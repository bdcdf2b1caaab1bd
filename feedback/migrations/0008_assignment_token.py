"""Assignment.token: the opaque name of the item on an annotator's screen, carried by each vote."""
import secrets

from django.db import migrations, models

import feedback.models


def fill_tokens(apps, schema_editor):
    Assignment = apps.get_model("feedback", "Assignment")
    batch = []
    for assignment in Assignment.objects.only("id").iterator(chunk_size=2000):
        assignment.token = secrets.token_urlsafe(12)
        batch.append(assignment)
        if len(batch) >= 2000:
            Assignment.objects.bulk_update(batch, ["token"])
            batch = []
    Assignment.objects.bulk_update(batch, ["token"])


class Migration(migrations.Migration):
    dependencies = [("feedback", "0007_completion_role_marker")]

    operations = [
        migrations.AddField(
            model_name="assignment",
            name="token",
            field=models.CharField(default=feedback.models.item_token, editable=False, max_length=24),
        ),
        migrations.AddIndex(
            model_name="assignment",
            index=models.Index(fields=["annotator", "token"], name="assignment_annotator_token"),
        ),
        migrations.RunPython(fill_tokens, migrations.RunPython.noop),
    ]

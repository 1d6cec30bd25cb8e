"""Point the pages of exams stored before MathJax was served by the exam-content origin at
its copies (exams/mathjax.py). Files only; running it again changes nothing."""

from pathlib import Path

from django.conf import settings
from django.db import migrations


def point_stored_exams_at_local_mathjax(apps, schema_editor):
    from exams.mathjax import point_at_local_mathjax

    ExamPackage = apps.get_model("exams", "ExamPackage")
    root = Path(settings.MEDIA_ROOT) / "exams"
    for directory in ExamPackage.objects.values_list("directory", flat=True).iterator():
        if (root / directory).is_dir():
            point_at_local_mathjax(root / directory)


class Migration(migrations.Migration):
    dependencies = [("exams", "0001_initial")]
    operations = [migrations.RunPython(point_stored_exams_at_local_mathjax, migrations.RunPython.noop, elidable=True)]

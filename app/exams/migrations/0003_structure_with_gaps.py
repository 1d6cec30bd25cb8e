"""Re-read the structure (questions, parts, gaps and their marks as the Numbas runtime counts
them) and the runtime's Numbas version (numbas-manifest.json, not source.exam's editor tag) of
exams stored before they were kept this way. Packages whose files are gone keep what they have."""

from pathlib import Path

from django.conf import settings
from django.db import migrations


def reread_structures(apps, schema_editor):
    from exams.packages import structure_of_directory

    ExamPackage = apps.get_model("exams", "ExamPackage")
    root = Path(settings.MEDIA_ROOT) / "exams"
    for package in ExamPackage.objects.only("pk", "directory").iterator():
        found = structure_of_directory(root / package.directory)
        if found is not None:
            version, structure = found
            ExamPackage.objects.filter(pk=package.pk).update(numbas_version=version, structure=structure)


class Migration(migrations.Migration):
    dependencies = [("exams", "0002_local_mathjax")]
    operations = [migrations.RunPython(reread_structures, migrations.RunPython.noop, elidable=True)]

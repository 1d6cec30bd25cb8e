"""The project's own small SCORM 2004 exam (exams/demo_exam/): it behaves like a Numbas exam,
so that scripts/dev's demo resource and the tests work end to end without network access."""

import io
import zipfile
from pathlib import Path

DEMO_EXAM_DIR = Path(__file__).resolve().parent / "demo_exam"


def demo_exam_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(DEMO_EXAM_DIR.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(DEMO_EXAM_DIR).as_posix())
    return buffer.getvalue()

"""manage.py import_reference --database URL --media DIR [--dry-run]

Bring a numbas-lti-provider v4.x installation over (README: "Moving from numbas-lti-provider").
"""

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reference_import import selectors, services
from reference_import.reference import Reference, ReferenceUnreadable


class Command(BaseCommand):
    help = ("Import a numbas-lti-provider v4.x installation: its PostgreSQL database (read only) and its media "
            "folder. Safe to run again: what is imported already is skipped.")

    def add_arguments(self, parser):
        parser.add_argument("--database", required=True, help="The reference's database URL, postgres://user@host/name")
        parser.add_argument("--media", required=True, help="The reference's MEDIA_ROOT folder (exam zips)")
        parser.add_argument("--dry-run", action="store_true", help="Say what would be imported; write nothing")

    def handle(self, *args, database, media, dry_run, **options):
        media = Path(media)
        if not media.is_dir():
            raise CommandError(f"The media folder {media} does not exist.")
        started = time.monotonic()
        try:
            progress = services.import_reference(database_url=database, media=media, dry_run=dry_run,
                                                 log=lambda text: self.stdout.write(text))
        except ReferenceUnreadable as error:
            raise CommandError(str(error)) from None
        except services.ImportFailed as error:
            raise CommandError(f"The import stopped: {error}. What was imported so far is kept; run it again "
                               "after fixing this.") from None
        elapsed = time.monotonic() - started
        kinds = sorted(set(progress.created) | set(progress.skipped))
        verb = "to import" if dry_run else "imported now"
        self.stdout.write(("Dry run: nothing was written.\n" if dry_run else "") + f"{'what':<16} {verb:>14} {'already imported':>17}")
        for kind in kinds:
            self.stdout.write(f"{kind:<16} {progress.created[kind]:>14} {progress.skipped[kind]:>17}")
        for warning in progress.warnings:
            self.stderr.write(f"warning: {warning}")
        self.stdout.write(f"time: {elapsed:.1f} s")
        if dry_run:
            return
        reference = Reference(database)
        try:
            check = selectors.compare(reference)
        finally:
            reference.close()
        self.stdout.write("\nCheck: the reference and this system side by side")
        for what, theirs, ours, ok in check.lines:
            self.stdout.write(f"{'ok  ' if ok else 'DIFF'} {what}: reference {theirs}, here {ours}")
        if check.differences or progress.warnings:
            self.stderr.write("\n" + "!" * 72 + "\nIMPORT CHECK FAILED: the two systems differ:")
            for line in check.differences + progress.warnings:
                self.stderr.write(f"  - {line}")
            self.stderr.write("!" * 72)
            sys.exit(2)
        self.stdout.write("Import check passed: every count and score is equal.")

from datetime import timedelta

from django.core.management.base import BaseCommand

from lti13 import keys


class Command(BaseCommand):
    help = (
        "Rotate the tool's LTI 1.3 signing key: a new key is published at once and signs after --publish-ahead "
        "hours (so platforms that cache the keyset know it first); the current key stays published for "
        "--keep-after hours after that, then retires."
    )

    def add_arguments(self, parser):
        parser.add_argument("--publish-ahead", type=float, default=keys.DEFAULT_PUBLISH_AHEAD.total_seconds() / 3600,
                            metavar="HOURS", help="Hours between publishing the new key and signing with it (default 24).")
        parser.add_argument("--keep-after", type=float, default=keys.DEFAULT_KEEP_AFTER.total_seconds() / 3600,
                            metavar="HOURS", help="Hours the old key stays published after the new one signs (default 48).")

    def handle(self, *args, publish_ahead, keep_after, **options):
        if publish_ahead < 0 or keep_after <= 0:
            self.stderr.write("--publish-ahead must be 0 or more and --keep-after more than 0.")
            raise SystemExit(2)
        keys.signing_key()  # there is a current key to rotate from
        new, replaced = keys.key_rotate(publish_ahead=timedelta(hours=publish_ahead),
                                        keep_after=timedelta(hours=keep_after))
        self.stdout.write(f"New key {new.kid}: published now, signs from {new.signs_from:%Y-%m-%d %H:%M %Z}.")
        for key in replaced:
            self.stdout.write(f"Key {key.kid} retires at {key.retires_at:%Y-%m-%d %H:%M %Z}.")

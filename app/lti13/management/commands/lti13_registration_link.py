from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from lti13.services import REGISTRATION_LINK_LIFETIME, registration_link_create
from lti13.setup import default_base_url


class Command(BaseCommand):
    help = (
        "Make a one-time LTI 1.3 dynamic registration link for an LMS administrator: they give it to their LMS "
        "(Moodle: Manage tools → Tool URL → Add LTI Advantage), which registers this tool without anyone signing "
        "in here. The link registers one platform and expires; it is printed once (only its hash is kept)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=REGISTRATION_LINK_LIFETIME.days,
                            help=f"Days the link stays valid (default {REGISTRATION_LINK_LIFETIME.days}).")
        parser.add_argument("--note", default="", help="Who or what the link is for, e.g. 'Maths Moodle'.")
        parser.add_argument("--base-url", help="This tool's public address, for the URL printed "
                                               "(default: the first of ALLOWED_HOSTS over https).")

    def handle(self, *args, days, note, base_url, **options):
        try:
            link, token = registration_link_create(lifetime=timedelta(days=days), note=note)
        except ValueError as error:
            raise CommandError(str(error)) from None
        base = (base_url or default_base_url()).rstrip("/")
        self.stdout.write(base + reverse("lti13:register_link", args=[token]))
        self.stderr.write(f"Registers one platform; valid until {link.expires_at:%Y-%m-%d %H:%M %Z}.")

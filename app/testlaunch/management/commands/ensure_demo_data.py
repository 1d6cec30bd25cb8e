from django.core.management.base import BaseCommand, CommandError

from testlaunch.services import demo_data_ensure, platform_urls


class Command(BaseCommand):
    help = ("Create (once) the demo consumer, course and resource that the test-launch page uses; with --base-url, "
            "also the demo LMS's LTI 1.3 registration for that address.")

    def add_arguments(self, parser):
        parser.add_argument("--secret", help="The demo consumer's secret (default: keep or generate).")
        parser.add_argument("--base-url", help="This site's address, e.g. http://127.0.0.1:8000: registers the demo "
                                               "LMS as an LTI 1.3 platform whose issuer is this address + "
                                               "/test-launch/platform. (The test-launch page also does it for the "
                                               "address it is opened at, when it first launches with LTI 1.3.)")

    def handle(self, *args, secret, base_url, **options):
        base_url = (base_url or "").rstrip("/") or None
        try:
            resource = demo_data_ensure(secret=secret, base_url=base_url)
        except ValueError as error:
            raise CommandError(f"The demo LMS's LTI 1.3 registration for {base_url}: {error}") from None
        self.stdout.write(f"Demo consumer {resource.consumer.key!r}, resource {resource.title!r} (id {resource.pk}).")
        if base_url:
            self.stdout.write(f"Demo LTI 1.3 platform: issuer {platform_urls(base_url=base_url)['issuer']}.")

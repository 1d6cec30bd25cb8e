from django.core.management.base import BaseCommand

from testlaunch.services import demo_data_ensure


class Command(BaseCommand):
    help = "Create (once) the demo consumer, course and resource that the test-launch page uses."

    def add_arguments(self, parser):
        parser.add_argument("--secret", help="The demo consumer's secret (default: keep or generate).")

    def handle(self, *args, secret, **options):
        resource = demo_data_ensure(secret=secret)
        self.stdout.write(f"Demo consumer {resource.consumer.key!r}, resource {resource.title!r} (id {resource.pk}).")

from django.core.management.base import BaseCommand, CommandError

from lms.services import consumer_create_or_update


class Command(BaseCommand):
    help = (
        "Create an LTI 1.1 consumer (an LMS allowed to launch this tool), or give an existing "
        "key a new secret. Without --secret a random secret is generated and printed once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--key", required=True, help="The consumer key the LMS will send.")
        parser.add_argument("--secret", help="The shared secret (default: generate one).")
        parser.add_argument("--name", help="A name for people, e.g. 'University Moodle'.")

    def handle(self, *args, key, secret, name, **options):
        try:
            consumer, secret_used, created = consumer_create_or_update(key=key, secret=secret, name=name)
        except ValueError as error:
            raise CommandError(str(error)) from None
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} consumer {consumer.name!r} with key {consumer.key!r}.")
        if secret is None:
            self.stdout.write("Its new secret (shown only now; store it in the LMS):")
            self.stdout.write(secret_used)

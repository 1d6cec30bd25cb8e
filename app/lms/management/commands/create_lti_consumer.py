from django.core.management.base import BaseCommand, CommandError

from lms.services import consumer_create_or_update


class Command(BaseCommand):
    help = (
        "Create an LTI 1.1 consumer (an LMS allowed to launch this tool), or give an existing "
        "key a new secret. Without --secret a random secret is generated and printed once; with "
        "--keep-secret an existing consumer keeps its secret (to change only its name or roles)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--key", required=True, help="The consumer key the LMS will send.")
        parser.add_argument("--secret", help="The shared secret (default: generate one).")
        parser.add_argument("--name", help="A name for people, e.g. 'University Moodle'.")
        parser.add_argument(
            "--instructor-roles", metavar="ROLES",
            help="Comma-separated LTI roles that also make someone an instructor of the course they launch from, "
                 "e.g. urn:lti:instrole:ims/lis/Administrator ('' for none; default: leave them as they are). "
                 "Course roles Instructor, TeachingAssistant, ContentDeveloper, Administrator and Manager always do.",
        )
        parser.add_argument("--keep-secret", action="store_true",
                            help="An existing consumer keeps its secret (change only --name or --instructor-roles).")

    def handle(self, *args, key, secret, name, instructor_roles, keep_secret, **options):
        try:
            consumer, secret_used, created = consumer_create_or_update(
                key=key, secret=secret, name=name, instructor_roles=instructor_roles, keep_secret=keep_secret)
        except ValueError as error:
            raise CommandError(str(error)) from None
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} consumer {consumer.name!r} with key {consumer.key!r}.")
        if consumer.instructor_roles:
            self.stdout.write("Also instructors: " + ", ".join(consumer.instructor_roles.split()))
        if secret_used is None:
            self.stdout.write("Its secret is unchanged.")
        elif secret is None:
            self.stdout.write("Its new secret (shown only now; store it in the LMS):")
            self.stdout.write(secret_used)

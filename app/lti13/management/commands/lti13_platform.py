import json

from django.core.management.base import BaseCommand, CommandError

from lti13.services import PlatformValues, platform_create_or_update
from lti13.setup import tool_urls


class Command(BaseCommand):
    help = (
        "Register an LTI 1.3 platform (an LMS) by its issuer and the client id it gave this tool, or update the "
        "registration; add deployment ids. Then prints the URLs to give the LMS."
    )

    def add_arguments(self, parser):
        parser.add_argument("--issuer", required=True, help="The platform's issuer (iss), e.g. https://moodle.example.edu")
        parser.add_argument("--client-id", required=True, help="The client id the platform gave this tool.")
        parser.add_argument("--name", help="A name for people, e.g. 'University Moodle' (default: the issuer; "
                                           "an update keeps the name it has).")
        parser.add_argument("--auth-login-url", help="The platform's OIDC authentication request URL.")
        parser.add_argument("--token-url", help="The platform's OAuth2 access token URL (for grades and rosters).")
        parser.add_argument("--token-audience", help="The token requests' audience, if not the token URL.")
        parser.add_argument("--keyset-url", help="The platform's public keyset (JWKS) URL.")
        parser.add_argument("--keyset-file", help="A file with the platform's public keys as a JWKS (no keyset URL).")
        parser.add_argument("--deployment-id", action="append", default=[], metavar="ID",
                            help="A deployment id the platform launches from (repeat for several).")
        parser.add_argument("--consumer-key", help="The LTI 1.1 consumer key this LMS already uses here, so its "
                                                   "people, courses and activities carry on in LTI 1.3.")
        parser.add_argument("--base-url", help="This tool's public address, for the URLs printed "
                                               "(default: the first of ALLOWED_HOSTS over https).")

    def handle(self, *args, **options):
        keyset = None
        if options["keyset_file"]:
            try:
                with open(options["keyset_file"]) as f:
                    keyset = json.load(f)
            except (OSError, ValueError) as error:
                raise CommandError(f"Could not read the keyset file: {error}") from None
            if not isinstance(keyset, dict) or not isinstance(keyset.get("keys"), list):
                raise CommandError('The keyset file must be a JWKS: {"keys": [...]}.')
        values = PlatformValues(
            name=options["name"] or "", issuer=options["issuer"], client_id=options["client_id"],
            auth_login_url=options["auth_login_url"] or "", auth_token_url=options["token_url"] or "",
            auth_audience=options["token_audience"] or "", keyset_url=options["keyset_url"] or "", keyset=keyset)
        try:
            platform, created = platform_create_or_update(values=values, deployment_ids=options["deployment_id"],
                                                          consumer_key=options["consumer_key"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{'Registered' if created else 'Updated'} {platform}.")
        deployments = list(platform.deployments.values_list("deployment_id", flat=True))
        self.stdout.write("Deployments: " + (", ".join(deployments) if deployments else
                                             "none yet — launches are refused until one is added"))
        self.stdout.write("Give the LMS these:")
        for label, url in tool_urls(base_url=options["base_url"]).items():
            self.stdout.write(f"  {label}: {url}")

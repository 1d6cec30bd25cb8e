from django.apps import AppConfig


class CompatConfig(AppConfig):
    name = "compat"
    verbose_name = "Addresses of numbas-lti-provider (after moving from it)"

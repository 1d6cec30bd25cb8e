from django.apps import AppConfig


class Lti13Config(AppConfig):
    name = "lti13"
    verbose_name = "LTI 1.3 platforms"

from django.apps import AppConfig


class PeopleConfig(AppConfig):
    name = "people"
    verbose_name = "People's preferences"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from people import services

        user_logged_in.connect(services.preferences_load_on_login, dispatch_uid="people-preferences-on-login")

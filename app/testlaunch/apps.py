from django.apps import AppConfig


class TestLaunchConfig(AppConfig):
    name = "testlaunch"
    verbose_name = "Test launch (demo LMS)"

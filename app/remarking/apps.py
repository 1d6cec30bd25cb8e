from django.apps import AppConfig


class RemarkingConfig(AppConfig):
    name = "remarking"
    verbose_name = "Re-marking every attempt with the exam's own marking"

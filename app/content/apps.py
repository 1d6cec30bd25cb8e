from django.apps import AppConfig


class ContentConfig(AppConfig):
    """The exam-content origin: what is served there, and nothing else (see content/README in
    the module docstrings and README.md "Where exams run")."""

    name = "content"

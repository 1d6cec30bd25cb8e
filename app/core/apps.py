from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self):
        # Before any URLconf (HTTP or websocket routing) is imported: they use <id:…>.
        from django.urls import register_converter

        from core.converters import DatabaseIdConverter

        register_converter(DatabaseIdConverter, "id")

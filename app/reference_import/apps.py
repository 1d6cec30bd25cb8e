from django.apps import AppConfig


class ReferenceImportConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reference_import"
    verbose_name = "Import from numbas-lti-provider"

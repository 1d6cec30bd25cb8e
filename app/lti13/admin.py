from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from lti13.models import DeepLinkingRequest, Deployment, LoginState, Platform, RegistrationLink, ToolKey


class DeploymentInline(admin.TabularInline):
    model = Deployment
    extra = 1
    readonly_fields = ["created_at"]


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ["name", "issuer", "client_id", "consumer", "active", "setup_page"]
    list_filter = ["active"]
    search_fields = ["name", "issuer", "client_id"]
    list_select_related = ["consumer"]
    raw_id_fields = ["consumer"]
    readonly_fields = ["created_at", "updated_at", "setup_page"]
    inlines = [DeploymentInline]

    @admin.display(description=_("What the LMS needs"))
    def setup_page(self, platform):
        if platform.pk is None:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("lti13:platform_setup", args=[platform.pk]),
                           _("URLs for the LMS administrator"))


@admin.register(ToolKey)
class ToolKeyAdmin(admin.ModelAdmin):
    list_display = ["kid", "created_at", "signs_from", "retires_at"]
    exclude = ["private_key_pem"]
    readonly_fields = ["kid", "public_jwk", "created_at", "signs_from", "retires_at"]

    def has_add_permission(self, request):
        return False  # manage.py lti13_rotate_key


@admin.register(LoginState)
class LoginStateAdmin(admin.ModelAdmin):
    list_display = ["created_at", "platform", "used_at", "expires_at"]
    exclude = ["state", "nonce", "storage_secret_hash", "login_hint", "lti_message_hint"]
    readonly_fields = ["platform", "target_link_uri", "deployment_id", "storage_target", "created_at", "expires_at",
                       "used_at"]

    def has_add_permission(self, request):
        return False


@admin.register(DeepLinkingRequest)
class DeepLinkingRequestAdmin(admin.ModelAdmin):
    list_display = ["created_at", "name", "context_title", "platform", "used_at", "resource"]
    list_select_related = ["platform", "resource"]
    exclude = ["token_hash"]
    readonly_fields = ["platform", "consumer", "deployment_id", "sub", "name", "roles", "context_lti13_id",
                       "context_legacy_id", "context_title", "context_label", "settings", "return_url", "created_at",
                       "expires_at", "used_at", "resource"]

    def has_add_permission(self, request):
        return False


@admin.register(RegistrationLink)
class RegistrationLinkAdmin(admin.ModelAdmin):
    list_display = ["note", "created_at", "expires_at", "used_at", "platform"]
    exclude = ["token_hash"]
    readonly_fields = ["note", "created_at", "expires_at", "used_at", "platform"]

    def has_add_permission(self, request):
        return False  # manage.py lti13_registration_link (the URL is shown once)

    def has_change_permission(self, request, obj=None):
        return False

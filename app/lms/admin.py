from django.contrib import admin
from django.db import models

from lms.models import Consumer, Context, LaunchLog, LtiIdentity, Resource, ResourceAlias, ResourceMembership


@admin.register(Consumer)
class ConsumerAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "active", "created_at"]
    list_filter = ["active"]
    search_fields = ["name", "key"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Context)
class ContextAdmin(admin.ModelAdmin):
    list_display = ["title", "label", "context_id", "consumer", "updated_at"]
    list_filter = ["consumer"]
    search_fields = ["title", "label", "context_id"]
    readonly_fields = ["created_at", "updated_at"]


class ResourceAliasInline(admin.TabularInline):
    """The other LMS links (deep linking) that open this activity."""

    model = ResourceAlias
    fk_name = "resource"
    fields = ["lti13_id", "created_at"]
    readonly_fields = ["lti13_id", "created_at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ["title", "resource_link_id", "context", "consumer", "updated_at"]
    list_filter = ["consumer"]
    search_fields = ["title", "resource_link_id", "context__title"]
    list_select_related = ["context", "consumer"]
    raw_id_fields = ["context"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [ResourceAliasInline]


@admin.register(LtiIdentity)
class LtiIdentityAdmin(admin.ModelAdmin):
    list_display = ["full_name", "email", "lti_user_id", "consumer", "updated_at"]
    list_filter = ["consumer"]
    search_fields = ["full_name", "email", "lti_user_id", "username", "sourcedid", "user__username"]
    list_select_related = ["consumer"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(ResourceMembership)
class ResourceMembershipAdmin(admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["user", "resource", "role", "last_launched_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "resource__title"]
    list_select_related = ["user", "resource"]
    raw_id_fields = ["user", "resource"]
    readonly_fields = ["first_launched_at"]


@admin.register(LaunchLog)
class LaunchLogAdmin(admin.ModelAdmin):
    list_display = ["launched_at", "membership", "role", "user_agent"]
    list_filter = ["role"]
    list_select_related = ["membership__user", "membership__resource"]
    exclude = ["handoff_token_hash"]
    readonly_fields = ["membership", "launched_at", "role", "user_agent", "handoff_used_at"]

    def has_add_permission(self, request):
        return False

from django.contrib import admin

from exams.models import ExamPackage


@admin.register(ExamPackage)
class ExamPackageAdmin(admin.ModelAdmin):
    list_display = ["title", "version", "resource", "file_count", "uploaded_by", "uploaded_at"]
    search_fields = ["title", "resource__title"]
    list_select_related = ["resource", "uploaded_by"]
    readonly_fields = [f.name for f in ExamPackage._meta.fields]

    def has_add_permission(self, request):
        return False  # packages come in through the instructor page, which checks them

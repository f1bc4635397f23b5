from django.contrib import admin

from .models import Defect


@admin.register(Defect)
class DefectAdmin(admin.ModelAdmin):
    list_display = ("title", "part_number", "severity", "status", "created_at")
    list_filter = ("severity", "status")

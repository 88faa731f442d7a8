from django.contrib import admin

from registry.models import ModelVersion, RegisteredModel


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("model", "version", "stage", "created_at")
    list_filter = ("stage",)
    # Stages change only through the promotion service (its policy and history), not by editing.
    readonly_fields = ("stage",)

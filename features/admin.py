from django.contrib import admin

from features.models import FeatureDefinition, FeatureView


@admin.register(FeatureDefinition)
class FeatureDefinitionAdmin(admin.ModelAdmin):
    list_display = ("name", "dtype", "created_at")
    search_fields = ("name", "description")


@admin.register(FeatureView)
class FeatureViewAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "timeframe", "ttl_seconds", "created_at")
    list_filter = ("name",)

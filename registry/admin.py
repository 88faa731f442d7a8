"""Admin for the registry. Stage changes go through the promotion service only: each action
shows a confirmation page with every policy rule's result before it acts, and only users with
registry.promote_modelversion see the actions. The history is read-only everywhere."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from registry.errors import RegistryError
from registry.models import (
    ModelAlias,
    ModelVersion,
    PredictionLog,
    RegisteredModel,
    Stage,
    StageTransition,
)
from registry.policy import OVERRIDE_PERMISSION, PROMOTE_PERMISSION
from registry.selectors import production_version, rollback_target
from registry.services import policy_check, version_rollback, version_transition

TRANSITION_FIELDS = (
    "created_at", "version", "from_stage", "to_stage", "outcome", "actor", "reason",
    "policy_results", "override_justification", "request_id",
)  # fmt: skip


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TransitionInline(ReadOnlyMixin, admin.TabularInline):
    model = StageTransition
    fk_name = "model"
    fields = readonly_fields = TRANSITION_FIELDS
    extra = 0
    ordering = ("-created_at", "-id")
    verbose_name_plural = "Stage history"


class VersionTransitionInline(TransitionInline):
    fk_name = "version"


class PromoteActionsMixin:
    def has_promote_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PROMOTE_PERMISSION)

    def _confirm(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        *,
        title: str,
        action: str,
        items: list[dict[str, Any]],
        error: str = "",
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": title,
            "action": action,
            "items": items,
            "queryset": queryset,
            "opts": self.model._meta,  # type: ignore[attr-defined]
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "can_override": request.user.has_perm(OVERRIDE_PERMISSION),
            "reason": request.POST.get("reason", ""),
            "override_justification": request.POST.get("override_justification", ""),
            "error": error,
        }
        return TemplateResponse(request, "admin/registry/confirm_transition.html", context)


@admin.register(RegisteredModel)
class RegisteredModelAdmin(PromoteActionsMixin, admin.ModelAdmin):
    list_display = ("name", "owner", "production", "created_at", "updated_at")
    search_fields = ("name", "description")
    list_filter = ("versions__stage",)
    readonly_fields = ("created_at", "updated_at")
    inlines = [TransitionInline]
    actions = ["rollback"]

    @admin.display(description="Production version")
    def production(self, model: RegisteredModel) -> str:
        version = production_version(model=model)
        return "—" if version is None else f"v{version.version}"

    @admin.action(
        description="Roll back to the previous Production version", permissions=["promote"]
    )
    def rollback(self, request: HttpRequest, queryset: QuerySet[RegisteredModel]) -> Any:
        error = ""
        if "apply" in request.POST:
            reason = request.POST.get("reason", "").strip()
            if reason:
                for model in queryset:
                    try:
                        t = version_rollback(model=model, actor=request.user, reason=reason)
                        self.message_user(
                            request, f"{model.name}: v{t.version.version} restored to Production."
                        )
                    except RegistryError as exc:
                        self.message_user(request, f"{model.name}: {exc}", messages.ERROR)
                return None
            error = "A reason is required."
        items = []
        for model in queryset:
            target = rollback_target(model=model)
            current = production_version(model=model)
            check = None
            if target is not None:
                check = policy_check(
                    version=target, to_stage=Stage.PRODUCTION, actor=request.user, rollback=True
                )
            items.append(
                {
                    "label": f"{model.name}: "
                    + (f"v{current.version}" if current else "no Production version")
                    + " → "
                    + (f"v{target.version}" if target else "nothing to roll back to"),
                    "check": check,
                }
            )
        return self._confirm(
            request, queryset, title="Roll back to the previous Production version",
            action="rollback", items=items, error=error,
        )  # fmt: skip


@admin.register(ModelVersion)
class ModelVersionAdmin(PromoteActionsMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("model", "version", "stage", "run", "created_by", "created_at")
    list_filter = ("stage", "model")
    search_fields = ("model__name", "description", "run__run_uuid", "artifact_sha256")
    list_select_related = ("model", "run", "created_by")
    # Lineage is copied at registration and stages change only through the promotion service.
    readonly_fields = (
        "model", "version", "stage", "description", "run", "feature_view", "training_set",
        "artifact_path", "artifact_sha256", "metrics", "created_by", "created_at",
    )  # fmt: skip
    exclude = ("reference_statistics",)
    inlines = [VersionTransitionInline]
    actions = ["promote_to_production", "move_to_staging", "archive"]

    def _transition(
        self, request: HttpRequest, queryset: QuerySet[ModelVersion], to_stage: str, action: str
    ) -> Any:
        queryset = queryset.select_related("model", "feature_view")
        if to_stage == Stage.PRODUCTION:
            models = [v.model_id for v in queryset]
            if len(models) != len(set(models)):
                self.message_user(
                    request, "Select at most one version per model for Production.", messages.ERROR
                )
                return None
        error = ""
        if "apply" in request.POST:
            reason = request.POST.get("reason", "").strip()
            override = request.POST.get("override_justification", "").strip()
            if reason:
                for version in queryset:
                    try:
                        t = version_transition(
                            version=version, to_stage=to_stage, actor=request.user,
                            reason=reason, override_justification=override,
                        )  # fmt: skip
                        self.message_user(
                            request,
                            f"{version.model.name} v{version.version} → {to_stage} ({t.outcome}).",
                        )
                    except RegistryError as exc:
                        self.message_user(
                            request,
                            f"{version.model.name} v{version.version}: {exc}",
                            messages.ERROR,
                        )
                return None
            error = "A reason is required."
        items = [
            {
                "label": f"{v.model.name} v{v.version}: {v.stage} → {to_stage}",
                "check": policy_check(version=v, to_stage=to_stage, actor=request.user),
            }
            for v in queryset
        ]
        return self._confirm(
            request, queryset, title=f"Move to {to_stage}", action=action, items=items, error=error
        )

    @admin.action(description="Promote to Production", permissions=["promote"])
    def promote_to_production(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> Any:
        return self._transition(request, queryset, Stage.PRODUCTION, "promote_to_production")

    @admin.action(description="Move to Staging", permissions=["promote"])
    def move_to_staging(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> Any:
        return self._transition(request, queryset, Stage.STAGING, "move_to_staging")

    @admin.action(description="Archive", permissions=["promote"])
    def archive(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> Any:
        return self._transition(request, queryset, Stage.ARCHIVED, "archive")


@admin.register(ModelAlias)
class ModelAliasAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("model", "alias", "version", "updated_at")
    search_fields = ("model__name", "alias")


@admin.register(StageTransition)
class StageTransitionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", "model", "version", "from_stage", "to_stage", "outcome", "actor")
    list_filter = ("outcome", "to_stage", "model")
    search_fields = ("model__name", "reason", "actor__username", "request_id")
    readonly_fields = ("model", *TRANSITION_FIELDS)


@admin.register(PredictionLog)
class PredictionLogAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Served predictions, as drift monitoring reads them; written only by
    registry.prediction_log."""

    list_display = (
        "created_at", "model_version", "symbol", "signal", "probability", "as_of", "stale",
        "latency_ms", "request_id",
    )  # fmt: skip
    list_filter = ("signal", "stale", "model_version__model")
    search_fields = ("symbol", "request_id", "model_version__model__name")
    list_select_related = ("model_version__model",)
    readonly_fields = (
        "model_version", "symbol", "as_of", "features", "probability", "signal", "stale",
        "latency_ms", "request_id", "requested_by", "created_at",
    )  # fmt: skip
    # The default paginator counts every row; the log grows with every request.
    show_full_result_count = False

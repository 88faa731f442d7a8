"""Models and promotions dashboards: model list, model (versions, stage history timeline,
rollback), version (lineage, metrics, drift reports) and the promotion / rollback pages, which
show every policy rule's result before the user confirms and then call the promotion service."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from registry.charts import stage_timeline, version_metrics
from registry.errors import NotPermitted, PromotionConflict, PromotionRefused, RegistryError
from registry.forms import RollbackForm, TransitionForm
from registry.models import ModelVersion, RegisteredModel, Stage, StageTransition
from registry.selectors import (
    model_history,
    model_versions,
    production_version,
    registered_models,
    rollback_target,
)
from registry.services import policy_check, version_rollback, version_transition
from tradingsite.dashboard.access import dashboard_view, model_admin_view
from tradingsite.dashboard.figures import figure_json
from tradingsite.dashboard.roles import MODELS_PERMISSION, can_override, can_promote
from tradingsite.dashboard.selectors import model_latest_severities, version_reports

HEADLINE_METRICS = ("accuracy", "roc_auc", "hit_rate", "log_loss", "sharpe", "max_drawdown")
TARGET_STAGES = (Stage.PRODUCTION, Stage.STAGING, Stage.ARCHIVED)
HISTORY_LIMIT = 200


def _timeline_rows(history: list[StageTransition]) -> list[dict[str, Any]]:
    return [
        {
            "at": t.created_at,
            "version": t.version.version,
            "from_stage": t.from_stage,
            "to_stage": t.to_stage,
            "outcome": t.outcome,
            "actor": t.actor.get_username() if t.actor else None,
            "reason": t.reason,
        }
        for t in history
    ]


@dashboard_view(MODELS_PERMISSION)
def model_list(request: HttpRequest) -> HttpResponse:
    models = list(registered_models())
    reports = model_latest_severities()
    rows = []
    for model in models:
        versions = list(model.versions.all())
        rows.append(
            {
                "model": model,
                "versions": len(versions),
                "latest": versions[0] if versions else None,
                "production": next((v for v in versions if v.stage == Stage.PRODUCTION), None),
                "report": reports.get(model.pk),
                "aliases": list(model.aliases.all()),
            }
        )
    return render(request, "registry/model_list.html", {"rows": rows})


def _history_context(model: RegisteredModel) -> dict[str, Any]:
    history = list(model_history(model=model)[:HISTORY_LIMIT])
    return {
        "model": model,
        "history": history,
        "timeline_chart": figure_json(stage_timeline(_timeline_rows(history), now=timezone.now())),
    }


@dashboard_view(MODELS_PERMISSION)
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    model = get_object_or_404(RegisteredModel, name=name)
    if request.GET.get("fragment") == "history":
        return render(request, "registry/_history.html", _history_context(model))
    versions = list(model_versions(model=model))
    production = next((v for v in versions if v.stage == Stage.PRODUCTION), None)
    headline = [k for k in HEADLINE_METRICS if any(k in (v.metrics or {}) for v in versions)]
    context = {
        **_history_context(model),
        "versions": versions,
        "production": production,
        "headline_metrics": headline,
        "metrics_chart": figure_json(
            version_metrics(
                [
                    {"version": v.version, "stage": v.stage, "metrics": v.metrics or {}}
                    for v in versions[:8]
                ],
                keys=HEADLINE_METRICS,
                highlight=production.version if production else None,
            )
        ),  # fmt: skip
        "rollback_to": rollback_target(model=model) if can_promote(request.user) else None,
    }
    return render(request, "registry/model_detail.html", context)


def _version(name: str, number: int) -> ModelVersion:
    return get_object_or_404(
        ModelVersion.objects.select_related(
            "model", "run__experiment", "feature_view", "created_by"
        ),
        model__name=name,
        version=number,
    )


@dashboard_view(MODELS_PERMISSION)
def version_detail(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = _version(name, number)
    metrics = sorted((version.metrics or {}).items())
    context = {
        "version": version,
        "model": version.model,
        "production": production_version(model=version.model),
        "headline": [(k, v) for k, v in metrics if "/" not in k],
        "detailed": [(k, v) for k, v in metrics if "/" in k],
        "reports": version_reports(version=version),
        "history": list(model_history(model=version.model).filter(version=version)[:50]),
        "targets": [s for s in TARGET_STAGES if s != version.stage],
        "reference_features": sorted(
            ((version.reference_statistics or {}).get("features") or {}).keys()
        ),
    }
    return render(request, "registry/version_detail.html", context)


def _refusal(exc: RegistryError) -> tuple[str, int, list[dict[str, Any]] | None]:
    """The message, status and (for a policy refusal) every rule's result of a failed call."""
    if isinstance(exc, PromotionRefused):
        return str(exc), 409, exc.results
    if isinstance(exc, PromotionConflict):
        return str(exc), 409, None
    if isinstance(exc, NotPermitted):
        return str(exc), 403, None
    return str(exc), getattr(exc, "status_code", 400), None


@model_admin_view
def version_promote(request: HttpRequest, name: str, number: int) -> HttpResponse:
    """GET: every policy rule's result for (version, stage, you), nothing recorded. POST: the
    promotion service, which evaluates the policy again and records the attempt."""
    version = _version(name, number)
    stage = request.POST.get("stage") or request.GET.get("stage") or Stage.PRODUCTION
    if stage not in TARGET_STAGES or stage == version.stage:
        return render(
            request,
            "dashboard/forbidden.html",
            {"message": f"v{version.version} cannot move to {stage!r} from {version.stage}."},
            status=400,
        )
    production = production_version(model=version.model)
    form = TransitionForm(
        request.POST or None,
        initial={"expected_production": production.pk if production else ""},
    )
    error, status, results = "", 200, None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        seen: dict[str, Any] = {}
        if "expected_production" in request.POST:  # the page's form always sends it
            seen["expected_production"] = ModelVersion.objects.filter(
                pk=data["expected_production"], model=version.model
            ).first()
        try:
            transition = version_transition(
                version=version,
                to_stage=stage,
                actor=request.user,
                reason=data["reason"],
                override_justification=data["override_justification"],
                **seen,
            )
        except RegistryError as exc:
            error, status, results = _refusal(exc)
        else:
            messages.success(
                request,
                f"{version.model.name} v{version.version} → {stage} ({transition.outcome}).",
            )
            return redirect(reverse("dashboard:model-detail", args=[name]) + "#history")
    elif request.method == "POST":
        status = 400
    if results is None:
        results = policy_check(version=version, to_stage=stage, actor=request.user).as_list()
    context = {
        "model": version.model,
        "version": version,
        "stage": stage,
        "production": production,
        "results": results,
        "passed": all(r["passed"] for r in results),
        "form": form,
        "error": error,
        "can_override": can_override(request.user),
        "action": reverse("dashboard:model-version-promote", args=[name, number]),
        "title": f"Move {version.model.name} v{version.version} to {stage}",
    }
    return render(request, "registry/transition_confirm.html", context, status=status)


@model_admin_view
def model_rollback(request: HttpRequest, name: str) -> HttpResponse:
    """GET: the version a rollback would restore and the policy's rollback rules' results.
    POST: registry.services.version_rollback."""
    model = get_object_or_404(RegisteredModel, name=name)
    target = rollback_target(model=model)
    form = RollbackForm(request.POST or None)
    error, status, results = "", 200, None
    if request.method == "POST" and form.is_valid():
        try:
            transition = version_rollback(
                model=model, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except RegistryError as exc:
            error, status, results = _refusal(exc)
        else:
            messages.success(
                request, f"{model.name}: v{transition.version.version} restored to Production."
            )
            return redirect(reverse("dashboard:model-detail", args=[name]) + "#history")
    elif request.method == "POST":
        status = 400
    if results is None and target is not None:
        results = policy_check(
            version=target, to_stage=Stage.PRODUCTION, actor=request.user, rollback=True
        ).as_list()
    context = {
        "model": model,
        "version": target,
        "stage": Stage.PRODUCTION,
        "production": production_version(model=model),
        "results": results or [],
        "passed": target is not None and all(r["passed"] for r in results or []),
        "form": form,
        "error": error or ("" if target else "There is no earlier Production version."),
        "can_override": False,
        "rollback": True,
        "action": reverse("dashboard:model-rollback", args=[name]),
        "title": f"Roll back {model.name}",
    }
    return render(request, "registry/transition_confirm.html", context, status=status)

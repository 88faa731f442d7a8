"""The registry API under /api/v1/models/. Reads need a login; writes need a permission
(403 otherwise); a RegistryError from a service becomes `{"detail", "code", ...}` with its status,
and a refused promotion's 409 carries every policy rule's result."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.models import Run
from registry import selectors, services
from registry.api.serializers import (
    AliasSerializer,
    AliasSetSerializer,
    ModelVersionDetailSerializer,
    ModelVersionSerializer,
    PolicyCheckSerializer,
    PredictInputSerializer,
    PredictOutputSerializer,
    PromoteSerializer,
    RegisteredModelSerializer,
    RegistryErrorSerializer,
    RollbackSerializer,
    StageTransitionSerializer,
    VersionCreateSerializer,
)
from registry.errors import PromotionConflict, PromotionRefused, RegistryError
from registry.models import ModelVersion, RegisteredModel, Stage
from registry.policy import PROMOTE_PERMISSION, policy_active
from registry.serving import predict
from tradingsite.api.schema import bad_request
from tradingsite.observability.request_id import current_request_id

CREATE_PERMISSION = "registry.add_modelversion"
ERRORS = {
    400: bad_request("invalid input: field errors, or a RegistryError"),
    403: RegistryErrorSerializer,
    404: RegistryErrorSerializer,
    409: RegistryErrorSerializer,
}


def needs(permission: str) -> type[BasePermission]:
    """A permission class for writes: the user must hold `permission` (GETs need a login)."""

    class Needs(BasePermission):
        message = f"this needs the permission {permission}"

        def has_permission(self, request: Request, view: APIView) -> bool:
            if request.method in ("GET", "HEAD", "OPTIONS"):
                return True
            return bool(request.user and request.user.has_perm(permission))

    Needs.__name__ = f"Needs_{permission.replace('.', '_')}"
    return Needs


def error_response(exc: RegistryError) -> Response:
    body: dict[str, Any] = {"detail": str(exc), "code": exc.code}
    if isinstance(exc, PromotionRefused):
        body["policy_results"] = exc.results
    if isinstance(exc, PromotionRefused | PromotionConflict):
        body["transition_id"] = exc.transition_id
    return Response(body, status=exc.status_code)


def _model(name: str) -> RegisteredModel:
    return get_object_or_404(selectors.registered_models(), name=name)


def _version(model: RegisteredModel, number: int | str) -> ModelVersion:
    if not str(number).isdigit():
        raise ValidationError({"version": "must be a positive integer"})
    return get_object_or_404(selectors.model_versions(model=model), version=int(number))


class RegisteredModelListView(APIView):
    """Every registered model with its versions' stages and aliases."""

    @extend_schema(responses=RegisteredModelSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(RegisteredModelSerializer(selectors.registered_models(), many=True).data)


class RegisteredModelDetailView(APIView):
    @extend_schema(responses={200: RegisteredModelSerializer, 404: RegistryErrorSerializer})
    def get(self, request: Request, name: str) -> Response:
        return Response(RegisteredModelSerializer(_model(name)).data)


class ModelVersionListView(APIView):
    """GET: the model's versions, newest first. POST: register a FINISHED run's model as the
    next version (the model is created if absent); needs registry.add_modelversion."""

    permission_classes = [IsAuthenticated, needs(CREATE_PERMISSION)]

    @extend_schema(responses={200: ModelVersionSerializer(many=True), 404: RegistryErrorSerializer})
    def get(self, request: Request, name: str) -> Response:
        versions = selectors.model_versions(model=_model(name))
        return Response(ModelVersionSerializer(versions, many=True).data)

    @extend_schema(
        request=VersionCreateSerializer,
        responses={201: ModelVersionDetailSerializer, **ERRORS},
    )
    def post(self, request: Request, name: str) -> Response:
        body = VersionCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = Run.objects.filter(run_uuid=body.validated_data["run_id"]).first()
        if run is None:
            return Response(
                {"detail": f"no run {body.validated_data['run_id']}", "code": "not_found"},
                status=status.HTTP_404_NOT_FOUND,
            )
        try:
            version = services.model_version_create_from_run(
                model_name=name,
                run=run,
                user=request.user,
                description=body.validated_data.get("description", ""),
            )
        except RegistryError as exc:
            return error_response(exc)
        return Response(ModelVersionDetailSerializer(version).data, status=201)


class ModelVersionDetailView(APIView):
    @extend_schema(responses={200: ModelVersionDetailSerializer, 404: RegistryErrorSerializer})
    def get(self, request: Request, name: str, version: int) -> Response:
        return Response(ModelVersionDetailSerializer(_version(_model(name), version)).data)


class ModelVersionPromoteView(APIView):
    """Move a version to a stage through the promotion policy. Refused: 409 with every rule's
    result (recorded in the history). A user with registry.override_promotion_policy may add an
    override_justification (>= 10 characters) to apply it anyway."""

    permission_classes = [IsAuthenticated, needs(PROMOTE_PERMISSION)]

    @extend_schema(request=PromoteSerializer, responses={200: StageTransitionSerializer, **ERRORS})
    def post(self, request: Request, name: str, version: int) -> Response:
        body = PromoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model = _model(name)
        target = _version(model, version)
        expected: dict[str, Any] = {}
        if "expected_production_version" in body.validated_data:
            number = body.validated_data["expected_production_version"]
            expected["expected_production"] = None if number is None else _version(model, number)
        try:
            transition = services.version_transition(
                version=target,
                to_stage=body.validated_data["stage"],
                actor=request.user,
                reason=body.validated_data["reason"],
                override_justification=body.validated_data["override_justification"],
                **expected,
            )
        except RegistryError as exc:
            return error_response(exc)
        return Response(StageTransitionSerializer(transition).data)


class ModelRollbackView(APIView):
    """Put the previous Production version (from the history) back, through the policy."""

    permission_classes = [IsAuthenticated, needs(PROMOTE_PERMISSION)]

    @extend_schema(request=RollbackSerializer, responses={200: StageTransitionSerializer, **ERRORS})
    def post(self, request: Request, name: str) -> Response:
        body = RollbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            transition = services.version_rollback(
                model=_model(name), actor=request.user, reason=body.validated_data["reason"]
            )
        except RegistryError as exc:
            return error_response(exc)
        return Response(StageTransitionSerializer(transition).data)


class ModelHistoryView(APIView):
    """Every stage-transition attempt of the model's versions, newest first."""

    @extend_schema(
        responses={200: StageTransitionSerializer(many=True), 404: RegistryErrorSerializer}
    )
    def get(self, request: Request, name: str) -> Response:
        history = selectors.model_history(model=_model(name))
        return Response(StageTransitionSerializer(history, many=True).data)


class ModelPolicyCheckView(APIView):
    """A dry run: every policy rule's result for moving ?version= to ?stage= as the caller;
    nothing is recorded or changed."""

    @extend_schema(
        parameters=[
            OpenApiParameter("version", int, required=True),
            OpenApiParameter("stage", str, required=True, enum=Stage.values),
        ],
        responses={
            200: PolicyCheckSerializer,
            400: ERRORS[400],
            404: RegistryErrorSerializer,
        },
    )
    def get(self, request: Request, name: str) -> Response:
        stage = request.query_params.get("stage", "")
        if stage not in Stage.values:
            raise ValidationError({"stage": f"must be one of {Stage.values}"})
        version = _version(_model(name), request.query_params.get("version", ""))
        check = services.policy_check(version=version, to_stage=stage, actor=request.user)
        return Response(
            {
                "model": name,
                "version": version.version,
                "stage": stage,
                "passed": check.passed,
                "policy_source": policy_active().source,
                "results": check.as_list(),
            }
        )


class ModelAliasView(APIView):
    """PUT {"version": N}: point the alias at version N. DELETE: remove it. Both need
    registry.promote_modelversion (an alias such as `champion` decides what serves)."""

    permission_classes = [IsAuthenticated, needs(PROMOTE_PERMISSION)]

    @extend_schema(request=AliasSetSerializer, responses={200: AliasSerializer, **ERRORS})
    def put(self, request: Request, name: str, alias: str) -> Response:
        body = AliasSetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model = _model(name)
        version = _version(model, body.validated_data["version"])
        try:
            row = services.model_alias_set(model=model, alias=alias, version=version)
        except RegistryError as exc:
            return error_response(exc)
        return Response({"alias": row.alias, "version": version.version})

    @extend_schema(responses={204: OpenApiResponse(description="removed"), **ERRORS})
    def delete(self, request: Request, name: str, alias: str) -> Response:
        try:
            services.model_alias_delete(model=_model(name), alias=alias)
        except RegistryError as exc:
            return Response({"detail": str(exc), "code": "not_found"}, status=404)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelPredictView(APIView):
    """Predict with the model's Production version: per symbol, the signal (long/short/flat),
    P(up), the bar time of the features used and a stale flag, from the online store of the
    feature view version the model was trained on. Any logged-in user may predict; every
    prediction is logged (inputs, output, latency) for drift monitoring.

    A symbol without online features gets `error: "no_features"` and the others are still
    answered (200). 400: bad symbols list; 404: unknown model; 409: no Production version
    (`no_production_version`), or its artifact fails its sha256 check (`artifact_integrity`)
    or is not a servable model (`model_unservable`); nothing else is served in its place."""

    @extend_schema(
        request=PredictInputSerializer,
        responses={
            200: PredictOutputSerializer,
            400: ERRORS[400],
            404: RegistryErrorSerializer,
            409: RegistryErrorSerializer,
        },
    )
    def post(self, request: Request, name: str) -> Response:
        body = PredictInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        request_id = current_request_id()
        request_id = "" if request_id == "-" else request_id
        try:
            batch = predict(
                model_name=name,
                symbols=body.validated_data["symbols"],
                user=request.user,
                request_id=request_id,
            )
        except RegistryError as exc:
            return error_response(exc)
        return Response(batch.as_dict(request_id=request_id))

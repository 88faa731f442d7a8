"""MLflow's REST protocol: reading its requests, writing its entities, its error shape.

Requests are protocol-buffer JSON with snake_case names (mlflow.utils.proto_json_utils): int64
fields as numbers or digit strings, doubles as numbers or "NaN"/"Infinity"/"-Infinity", enums
by name. GET requests carry the same fields as query parameters. Errors are
`{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "..."}` with the HTTP status MLflow's
server uses for that code (mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS), so the client raises
MlflowException with the right error_code. A signed-in user refused an operation gets
PERMISSION_DENIED (403), audited as auth.permission_denied like the rest of the API.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rest_framework import exceptions
from rest_framework.response import Response

from experiments import validation
from experiments.constants import SEARCH_DEFAULT_RESULTS, SEARCH_MAX_RESULTS
from experiments.errors import InvalidParameterError, TrackingError
from experiments.models import Experiment, Run
from experiments.selectors import datetime_to_ms
from tradingsite.api.exceptions import exception_handler as platform_exception_handler

logger = logging.getLogger(__name__)

VIEW_TYPES = {"ACTIVE_ONLY": "active", "DELETED_ONLY": "deleted", "ALL": "all"}
VIEW_TYPE_NUMBERS = {1: "active", 2: "deleted", 3: "all"}
RUN_STATUS_NUMBERS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "BAD_REQUEST",
    413: "INVALID_PARAMETER_VALUE",
    415: "BAD_REQUEST",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}


# --- errors ---------------------------------------------------------------------------------------


def error_response(
    error_code: str, message: str, status: int, headers: Mapping[str, str] | None = None
) -> Response:
    return Response({"error_code": error_code, "message": message}, status=status, headers=headers)


def require_permission(request: Any, permission: str) -> None:
    """Refuse (PERMISSION_DENIED, 403) a user who does not hold `permission`."""
    user = request.user
    if not (getattr(user, "is_active", False) and user.has_perm(permission)):
        raise exceptions.PermissionDenied(f"this needs the permission {permission}")


def endpoint_not_found(path: str) -> Response:
    return error_response(
        "ENDPOINT_NOT_FOUND",
        f"tradingsite does not implement {path} (see the README's MLflow section for what is)",
        404,
    )


def _detail_text(detail: Any) -> str:
    if isinstance(detail, Mapping):
        return "; ".join(f"{key}: {_detail_text(value)}" for key, value in detail.items())
    if isinstance(detail, list | tuple):
        return "; ".join(_detail_text(item) for item in detail)
    return str(detail)


def mlflow_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error of the MLflow endpoints in MLflow's shape."""
    if isinstance(exc, TrackingError):
        return error_response(exc.error_code, exc.message, exc.mlflow_status)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        headers = {"WWW-Authenticate": exc.auth_header} if getattr(exc, "auth_header", None) else {}
        status = 401 if headers else 403
        return error_response(
            "UNAUTHENTICATED" if status == 401 else "PERMISSION_DENIED",
            _detail_text(exc.detail),
            status,
            headers,
        )
    if isinstance(exc, exceptions.ValidationError | exceptions.ParseError):
        return error_response("INVALID_PARAMETER_VALUE", _detail_text(exc.detail), 400)
    if isinstance(exc, exceptions.Throttled):
        headers = {"Retry-After": str(int(exc.wait))} if exc.wait else {}
        return error_response("REQUEST_LIMIT_EXCEEDED", _detail_text(exc.detail), 429, headers)
    # Other APIExceptions (a PermissionDenied is audited there), and a database down -> 503
    response = platform_exception_handler(exc, context)
    if response is None:
        return None
    body = response.data if isinstance(response.data, Mapping) else {}
    code = _STATUS_CODES.get(response.status_code, "INTERNAL_ERROR")
    headers = {k: v for k, v in response.items() if k in ("Retry-After", "Allow")}
    message = body.get("detail", _detail_text(response.data))
    return error_response(code, str(message), response.status_code, headers)


# --- reading requests -----------------------------------------------------------------------------


def body_of(request: Any) -> dict[str, Any]:
    """The request's fields: the JSON object of a POST, the query parameters of a GET."""
    if request.method in ("GET", "DELETE"):
        return {key: request.query_params.get(key) for key in request.query_params}
    data = request.data
    if not isinstance(data, Mapping):
        raise InvalidParameterError("the request body must be a JSON object")
    return dict(data)


def required(body: Mapping[str, Any], name: str) -> Any:
    value = body.get(name)
    if value is None or value == "":
        raise InvalidParameterError(f"Missing value for required parameter '{name}'.")
    return value


def required_str(body: Mapping[str, Any], name: str) -> str:
    value = required(body, name)
    if not isinstance(value, str):
        raise InvalidParameterError(f"Invalid value {value!r} for parameter '{name}': a string")
    return value


def run_id_of(body: Mapping[str, Any]) -> str:
    """MLflow sends a run's id as run_id and (deprecated) run_uuid."""
    value = body.get("run_id") or body.get("run_uuid")
    if not value:
        raise InvalidParameterError("Missing value for required parameter 'run_id'.")
    if not isinstance(value, str):
        raise InvalidParameterError(f"Invalid value {value!r} for parameter 'run_id'")
    return value


def optional_int(body: Mapping[str, Any], name: str, *, minimum: int = -(2**63)) -> int | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    return validation.int64(value, field=name, minimum=minimum)


def string_list(body: Mapping[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidParameterError(f"Invalid value for parameter '{name}': a list of strings")
    return value


def view_of(value: Any) -> str:
    if value in (None, ""):
        return "active"
    if isinstance(value, str) and value in VIEW_TYPES:
        return VIEW_TYPES[value]
    if isinstance(value, int) and value in VIEW_TYPE_NUMBERS:
        return VIEW_TYPE_NUMBERS[value]
    raise InvalidParameterError(f"Invalid value {value!r} for the view type: {sorted(VIEW_TYPES)}")


def status_of(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = RUN_STATUS_NUMBERS.get(value, value)
    if value not in Run.Status.values:
        raise InvalidParameterError(
            f"Invalid value {value!r} for parameter 'status': one of {Run.Status.values}"
        )
    return value


def max_results_of(body: Mapping[str, Any]) -> int:
    value = optional_int(body, "max_results")
    if value is None:
        return SEARCH_DEFAULT_RESULTS
    if not 1 <= value <= SEARCH_MAX_RESULTS:
        raise InvalidParameterError(
            "Invalid value for request parameter max_results. It must be at most "
            f"{SEARCH_MAX_RESULTS}, but got value {value}"
        )
    return value


def offset_of(page_token: Any) -> int:
    """MLflow's page token: base64 of {"offset": n}."""
    if not page_token:
        return 0
    try:
        offset = json.loads(base64.b64decode(str(page_token), validate=True))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidParameterError(f"Invalid page token {page_token!r}") from None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidParameterError(f"Invalid page token {page_token!r}")
    return offset


def page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def paged(rows: list[Any], *, offset: int, limit: int) -> tuple[list[Any], str | None]:
    """`rows` holds up to limit + 1 items from `offset`: the extra one says there is more."""
    return rows[:limit], (page_token(offset + limit) if len(rows) > limit else None)


def page_body(
    key: str,
    found: Any,
    *,
    offset: int,
    limit: int,
    to_json: Callable[[list[Any]], list[dict[str, Any]]],
) -> dict[str, Any]:
    """A search response: one page of `found` (a queryset) under `key`, as `to_json` renders
    it, and next_page_token when there is more."""
    page, token = paged(list(found[offset : offset + limit + 1]), offset=offset, limit=limit)
    body: dict[str, Any] = {key: to_json(page)}
    if token:
        body["next_page_token"] = token
    return body


# --- writing entities -----------------------------------------------------------------------------


def double(value: float, is_nan: bool) -> float | str:
    return "NaN" if is_nan else value


def key_values(rows: Iterable[Any]) -> list[dict[str, str]]:
    return [{"key": row.key, "value": row.value} for row in rows]


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": str(experiment.pk),
        "name": experiment.name,
        "artifact_location": experiment.effective_artifact_location,
        "lifecycle_stage": experiment.lifecycle,
        "last_update_time": datetime_to_ms(experiment.updated_at),
        "creation_time": datetime_to_ms(experiment.created_at),
        "tags": key_values(experiment.tags.all()),
    }


def run_info_json(run: Run) -> dict[str, Any]:
    info = {
        "run_id": run.run_uuid,
        "run_uuid": run.run_uuid,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.user_name,
        "status": run.status,
        "start_time": run.start_time,
        "artifact_uri": run.artifact_uri,
        "lifecycle_stage": run.lifecycle,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def metric_json(metric: Any) -> dict[str, Any]:
    return {
        "key": metric.key,
        "value": double(metric.value, metric.is_nan),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }


def run_json(run: Run) -> dict[str, Any]:
    """A run with its details loaded (selectors.runs_with_details)."""
    details = run.details
    return {
        "info": run_info_json(run),
        "data": {
            "metrics": [
                {"key": key, "value": double(value, is_nan), "timestamp": stamp, "step": step}
                for key, value, is_nan, step, stamp in details.metrics
            ],
            "params": [{"key": key, "value": value} for key, value in details.params],
            "tags": [{"key": key, "value": value} for key, value in details.tags],
        },
        "inputs": {},
        "outputs": {},
    }

"""Errors of the experiment tracker, each with MLflow's error code and both APIs' HTTP status.

Services raise these; the native API turns them into `{"detail", "code"}` bodies and the MLflow
API into MLflow's `{"error_code", "message"}`, with the status MLflow's server uses.
"""

from __future__ import annotations


class TrackingError(Exception):
    error_code = "INVALID_PARAMETER_VALUE"
    mlflow_status = 400
    native_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameterError(TrackingError):
    """Bad input: a malformed value, a limit exceeded, a param overwritten, a deleted run."""


class PayloadTooLargeError(InvalidParameterError):
    native_status = 413


class ResourceDoesNotExistError(TrackingError):
    error_code = "RESOURCE_DOES_NOT_EXIST"
    mlflow_status = 404
    native_status = 404


class ResourceAlreadyExistsError(TrackingError):
    error_code = "RESOURCE_ALREADY_EXISTS"
    mlflow_status = 400  # MLflow's status for this code; the native API says 409
    native_status = 409


class InvalidStateError(TrackingError):
    """The request is valid but the resource's state forbids it (a promotion the policy refuses,
    a model whose history must be kept). MLflow's server answers INVALID_STATE with 500, which
    its client retries (and each retry would be another refused attempt in the stage history),
    so both APIs say 409."""

    error_code = "INVALID_STATE"
    mlflow_status = 409
    native_status = 409


class ResourceConflictError(TrackingError):
    """A concurrent change won (e.g. another promotion took Production first); retry after
    looking at the new state."""

    error_code = "RESOURCE_CONFLICT"
    mlflow_status = 409
    native_status = 409

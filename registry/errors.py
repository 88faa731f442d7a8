"""What registry services raise; the API maps each to one status code (registry.api.views)."""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """A request the registry refuses as given (400); the message says why."""

    status_code = 400
    code = "invalid"


class NotPermitted(RegistryError):
    status_code = 403
    code = "permission_denied"


class ArtifactIntegrityError(RegistryError):
    """The stored artifact does not hash to its recorded sha256 (reliability.md: 409)."""

    status_code = 409
    code = "artifact_integrity"


class UnsupportedModelFormat(RegistryError):
    """The run's model artifact is not a tradingsite model document (a pickle, say): it is
    refused at registration and never deserialized (reliability.md T14)."""

    code = "unsupported_model_format"


class PromotionRefused(RegistryError):
    """The promotion policy refused the transition; `results` holds every rule's result."""

    status_code = 409
    code = "policy_refused"

    def __init__(self, message: str, *, results: list[dict[str, Any]], transition_id: int) -> None:
        super().__init__(message)
        self.results = results
        self.transition_id = transition_id


class PromotionConflict(RegistryError):
    """A concurrent transition changed the model's Production version first."""

    status_code = 409
    code = "conflict"

    def __init__(self, message: str, *, transition_id: int) -> None:
        super().__init__(message)
        self.transition_id = transition_id


class ModelNotFound(RegistryError):
    status_code = 404
    code = "not_found"


class NoProductionVersion(RegistryError):
    """The model exists but no version of it is in Production: nothing to serve."""

    status_code = 409
    code = "no_production_version"


class ModelUnservable(RegistryError):
    """The Production version cannot be served as recorded (not a model document, no feature
    view, features that disagree with its view); the message says why."""

    status_code = 409
    code = "model_unservable"

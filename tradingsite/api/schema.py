"""OpenAPI description of our authentication (imported in TradingsiteConfig.ready), and of the
error bodies every view shares."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.utils import OpenApiResponse


class RevocationCheckingJWTScheme(SimpleJWTScheme):
    target_class = "tradingsite.security.jwt.RevocationCheckingJWTAuthentication"
    name = "jwtAuth"


# The body of a 400, as the API sends it: the refused fields with their messages, as DRF's
# serializers report them (`{"field": ["message", ...]}`, nested for lists and objects), or one
# error for the request as a whole (`{"detail": "...", "code": "..."}`, plus what the view adds,
# e.g. `row` for a bar). Both are JSON objects; a schema naming only one would be untrue.
FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "description": "`{field: [message, ...]}` per refused field, or `{detail, code}`.",
}


def bad_request(description: str = "invalid input") -> OpenApiResponse:
    return OpenApiResponse(response=FIELD_ERRORS_SCHEMA, description=description)

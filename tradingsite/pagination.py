"""The API's limit/offset pagination, refusing what it cannot read.

DRF's LimitOffsetPagination serves its default page for `?limit=abc`, `?limit=0` or
`?offset=-1`, so a typo silently returns other rows than were asked for. Here each is a 400
naming the parameter, and the OpenAPI schema states the bounds the API enforces.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

# Past this an offset only reaches an empty page, and the database may refuse the number
# (SQLite integers are 64-bit): a 400, not a 500.
MAX_OFFSET = 2**62


def _integer(request: Request, name: str, *, minimum: int, maximum: int) -> int:
    raw = request.query_params[name]
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: f"must be an integer, got {raw[:40]!r}"}) from None
    if not minimum <= value <= maximum:
        raise ValidationError({name: f"must be between {minimum} and {maximum}"})
    return value


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """`limit` >= 1 (above `max_limit`, served as `max_limit`), `offset` >= 0."""

    def get_limit(self, request: Request) -> int | None:
        if self.limit_query_param not in request.query_params:
            return self.default_limit
        limit = _integer(request, self.limit_query_param, minimum=1, maximum=MAX_OFFSET)
        return min(limit, self.max_limit) if self.max_limit else limit

    def get_offset(self, request: Request) -> int:
        if self.offset_query_param not in request.query_params:
            return 0
        return _integer(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        minimum = {self.limit_query_param: 1, self.offset_query_param: 0}
        for parameter in parameters:
            if parameter["name"] in minimum:
                schema = parameter["schema"]
                schema.update(minimum=minimum[parameter["name"]], maximum=MAX_OFFSET)
        return parameters


class BoundedLimitOffsetPagination(StrictLimitOffsetPagination):
    """The API's default (REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]): strict, and `?limit=`
    above API_MAX_PAGE_SIZE is served as API_MAX_PAGE_SIZE, so one request cannot ask for a
    whole table (stock LimitOffsetPagination has no `max_limit`)."""

    @property
    def max_limit(self) -> int:  # type: ignore[override]
        return settings.API_MAX_PAGE_SIZE

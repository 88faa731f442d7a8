"""The API's default pagination: DRF's limit/offset with a ceiling on `?limit=`."""

from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """`?limit=` above API_MAX_PAGE_SIZE is served as API_MAX_PAGE_SIZE, so one request cannot
    ask for a whole table (stock LimitOffsetPagination has no `max_limit`)."""

    @property
    def max_limit(self) -> int:  # type: ignore[override]
        return settings.API_MAX_PAGE_SIZE

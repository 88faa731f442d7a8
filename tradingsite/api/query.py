"""Query strings for query serializers."""

from __future__ import annotations

from rest_framework.request import Request


def query_data(request: Request) -> dict[str, str]:
    """The query string as a serializer's input, read as a query string and not as an HTML form.

    DRF reads a QueryDict like a submitted form, where an empty `?until=` means "not sent" and
    is silently dropped. In a query string it is a value: an empty date, number or name is a
    400 naming the parameter, as the OpenAPI schema says. A repeated parameter gives its last
    value, as `QueryDict[name]` does."""
    return {name: values[-1] for name, values in request.query_params.lists()}

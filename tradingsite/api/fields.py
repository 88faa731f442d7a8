"""Serializer fields shared by the API's apps."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StringField(serializers.CharField):
    """A JSON string. DRF's CharField turns a number into text (`{"name": 0}` becomes "0"),
    so a client's type error would be stored silently; the schema says `string`, and a
    number or a boolean is refused with a 400 naming the field. Form and query input, where
    every value is text, reads as before."""

    default_error_messages = {"not_a_string": "must be a string, not {kind}"}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string", kind=type(data).__name__)
        return super().to_internal_value(data)

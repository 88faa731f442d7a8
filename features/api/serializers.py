"""Market API shapes. Bars are checked as a whole by features.market, not field by field here:
DRF field validation of 50,000 nested bars would take seconds, pandas takes milliseconds."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from features import constants
from features.market import is_timeframe
from features.models import Bar
from tradingsite.api.fields import StringField


def _timeframe(value: str) -> str:
    if not is_timeframe(value):
        raise serializers.ValidationError(
            "a count and a unit: m (minutes), h (hours), d (days) or w (weeks), e.g. 1d, 5m"
        )
    return value


class BarInSerializer(serializers.Serializer):
    """One bar of an ingest payload, for the schema only: features.market validates the bars."""

    symbol = StringField(required=False, help_text="when the payload has no symbol")
    ts = serializers.DateTimeField(help_text="bar close time, ISO 8601; naive means UTC")
    open = serializers.FloatField()
    high = serializers.FloatField()
    low = serializers.FloatField()
    close = serializers.FloatField()
    volume = serializers.FloatField(min_value=0)


@extend_schema_field(BarInSerializer(many=True))
class BarListField(serializers.ListField):
    """A list of bar objects; its length is checked before any bar is looked at."""

    child = serializers.DictField()

    def to_internal_value(self, data: Any) -> list[dict[str, Any]]:
        if isinstance(data, list) and len(data) > constants.MAX_BARS_PER_REQUEST:
            raise serializers.ValidationError(
                f"at most {constants.MAX_BARS_PER_REQUEST} bars per request; got {len(data)}"
            )
        return super().to_internal_value(data)


class BarsIngestSerializer(serializers.Serializer):
    symbol = StringField(required=False, max_length=constants.SYMBOL_MAX_LENGTH)
    timeframe = StringField(validators=[_timeframe])
    bars = BarListField(allow_empty=False, help_text="at most 50,000 bars")


class BarUpsertResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()


class BarsQuerySerializer(serializers.Serializer):
    symbol = StringField(max_length=constants.SYMBOL_MAX_LENGTH)
    timeframe = StringField(default="1d", validators=[_timeframe])
    start = serializers.DateTimeField(required=False, help_text="inclusive; naive means UTC")
    end = serializers.DateTimeField(required=False, help_text="inclusive; naive means UTC")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "start" in attrs and "end" in attrs and attrs["end"] < attrs["start"]:
            raise serializers.ValidationError({"end": "end is before start"})
        return attrs


class BarSerializer(serializers.ModelSerializer):
    class Meta:
        model = Bar
        fields = ["symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"]


class MarketSymbolSerializer(serializers.Serializer):
    symbol = StringField()
    timeframe = StringField()
    bars = serializers.IntegerField()
    first_ts = serializers.DateTimeField()
    last_ts = serializers.DateTimeField()

"""Market data API: bulk bar ingest, the symbol catalogue and paginated bar reads."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from features.api.serializers import (
    BarSerializer,
    BarsIngestSerializer,
    BarsQuerySerializer,
    BarUpsertResultSerializer,
    MarketSymbolSerializer,
)
from features.constants import INGEST_BARS_PERMISSION
from features.market import BarValidationError
from features.models import Bar
from features.selectors import bars_for, market_symbols
from features.services import bars_upsert
from tradingsite.api.permissions import WritePermissions
from tradingsite.api.query import query_data
from tradingsite.api.schema import bad_request


class BarListIngestView(ListAPIView):
    """GET: one series' bars in time order, paginated. POST: upsert up to 50,000 bars at once
    (the data engineer role)."""

    serializer_class = BarSerializer
    permission_classes = [IsAuthenticated, WritePermissions]
    write_permissions = {"POST": INGEST_BARS_PERMISSION}

    def get_queryset(self) -> QuerySet[Bar]:
        query = BarsQuerySerializer(data=query_data(self.request))
        query.is_valid(raise_exception=True)
        return bars_for(**query.validated_data)

    @extend_schema(
        parameters=[BarsQuerySerializer],
        description="One series' bars in time order, start <= ts <= end, paginated.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=BarsIngestSerializer,
        responses={
            201: BarUpsertResultSerializer,
            400: bad_request("field errors, or `{detail, row}` naming the bad bar (1-based)"),
        },
        description="Idempotent upsert on (symbol, timeframe, ts). One bad bar refuses the "
        "whole payload: nothing is written, and the error names its 1-based row.",
    )
    def post(self, request: Request) -> Response:
        body = BarsIngestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        payload = body.validated_data
        try:
            result = bars_upsert(
                frame=pd.DataFrame(payload["bars"]),
                symbol=payload.get("symbol"),
                timeframe=payload["timeframe"],
            )
        except BarValidationError as exc:
            return Response(
                {"detail": str(exc), "row": exc.row}, status=status.HTTP_400_BAD_REQUEST
            )
        return Response(asdict(result), status=status.HTTP_201_CREATED)


class MarketSymbolListView(ListAPIView):
    """Each stored (symbol, timeframe) with its bar count and first and last bar time."""

    serializer_class = MarketSymbolSerializer

    def get_queryset(self) -> QuerySet[Bar, dict[str, Any]]:
        return market_symbols()

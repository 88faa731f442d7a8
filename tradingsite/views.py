"""The landing page: what the platform holds, and where to go from here."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tradingsite.selectors import ml_status


@login_required
def home(request: HttpRequest) -> HttpResponse:
    context = {"status": ml_status(), "environment": settings.ENVIRONMENT}
    return render(request, "tradingsite/home.html", context)

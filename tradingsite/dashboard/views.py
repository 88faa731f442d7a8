"""The overview page. Each app renders its own pages (drift/views.py, registry/views.py, ...);
this one shows them together: service health, the models in Production with their latest drift
and feature quality, the severity timeline and the recent events, the last three live."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from drift.charts import severity_heatmap
from tradingsite.dashboard.access import dashboard_view
from tradingsite.dashboard.figures import figure_json
from tradingsite.dashboard.roles import OVERVIEW_PERMISSION
from tradingsite.dashboard.selectors import production_overview, recent_events, severity_timeline
from tradingsite.observability.health import service_matrix
from tradingsite.selectors import ml_status

TIMELINE_DAYS = 30


def _severity_chart() -> dict:
    return figure_json(severity_heatmap(severity_timeline(days=TIMELINE_DAYS)))


# fragment name -> (template, context builder); live.js re-fetches them on events
FRAGMENTS = {
    "events": ("dashboard/_events.html", lambda: {"events": recent_events()}),
    "production": ("dashboard/_production.html", lambda: {"production": production_overview()}),
    "timeline": ("dashboard/_timeline.html", lambda: {"severity_chart": _severity_chart()}),
}


@dashboard_view(OVERVIEW_PERMISSION)
def overview(request: HttpRequest) -> HttpResponse:
    fragment = FRAGMENTS.get(request.GET.get("fragment", ""))
    if fragment is not None:
        template, build = fragment
        return render(request, template, build())
    context = {
        "status": ml_status(),
        "services": [service.as_dict() for service in service_matrix()],
        "production": production_overview(),
        "events": recent_events(),
        "severity_chart": _severity_chart(),
        "timeline_days": TIMELINE_DAYS,
    }
    return render(request, "dashboard/overview.html", context)

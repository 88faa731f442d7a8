"""Template helpers of the dashboards: the live socket's starting point, severity badges (colour
and text), and number/time formats."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from django import template
from django.utils.html import format_html, json_script

from tradingsite.dashboard.figures import SEVERITIES
from tradingsite.events import latest_event_id

register = template.Library()


@register.simple_tag
def live_config() -> str:
    """The newest event id when the page was rendered: the socket resumes after it, so an event
    published between the render and the connection is replayed, not lost."""
    return json_script({"last_event_id": latest_event_id(), "path": "/ws/stream"}, "live-config")


@register.simple_tag
def severity_badge(severity: str | None) -> str:
    if severity not in SEVERITIES:
        return format_html('<span class="sev sev-unknown">no report</span>')
    return format_html('<span class="sev sev-{}">{}</span>', severity, severity)


@register.filter
def number(value: Any, digits: int = 3) -> str:
    """A metric for a table: `digits` decimals, an em dash for missing, NaN or infinite values."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    if not math.isfinite(value):
        return "—"
    if isinstance(value, int) or (value.is_integer() and abs(value) >= 1):
        return f"{int(value):,}"  # counts logged as floats (n_rows 6274.0) read as counts
    return f"{value:.{int(digits)}f}"


@register.filter
def percent(value: Any, digits: int = 0) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "—"
    return f"{value * 100:.{int(digits)}f}%"


@register.filter
def ms_datetime(value: Any) -> datetime | None:
    """Epoch milliseconds (runs' times, as MLflow keeps them) -> an aware datetime."""
    if value is None:
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


@register.filter
def duration_ms(value: Any) -> str:
    """1234567 -> "20m 34s"."""
    if value is None:
        return "—"
    seconds = int(value) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s" if seconds else f"{int(value)} ms"


@register.filter
def get(mapping: Any, key: Any) -> Any:
    """`row|get:name` for dict lookups with a variable key."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def bytes_h(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _payload(event: Any) -> dict[str, Any]:
    payload = getattr(event, "payload", None)
    return payload if isinstance(payload, dict) else {}


@register.filter
def event_summary(event: Any) -> str:
    """One readable line per event type; unknown types show their subject."""
    p = _payload(event)
    kind = getattr(event, "type", "")
    model = f"{p.get('model', '?')} v{p.get('version', '?')}"
    if kind == "drift.report.created":
        share = p.get("share_drifted")
        shared = f", {share:.0%} of features drifted" if isinstance(share, int | float) else ""
        return f"{model}: drift {p.get('severity', '?')}{shared}"
    if kind == "drift.scan.completed":
        return f"scan: {p.get('reports_created', 0)} report(s), {p.get('detail', '')}".strip(", ")
    if kind in ("models.promoted", "models.rolled_back"):
        how = "rolled back to" if kind.endswith("rolled_back") else "moved to"
        by = f" by {p['actor']}" if p.get("actor") else ""
        return f"{model} {how} {p.get('to_stage', '?')} ({p.get('outcome', '?')}){by}"
    if kind in ("features.materialized", "features.quality_low"):
        score = p.get("quality_score")
        scored = f", quality {score:.1f}" if isinstance(score, int | float) else ""
        view = f"{p.get('view', '?')} v{p.get('version', '?')}"
        return f"{view}: {p.get('rows_written', 0)} rows{scored}"
    if kind.startswith("features.materialization."):
        return (
            f"{p.get('view', '?')} v{p.get('version', '?')} job {p.get('job_id', '?')}: "
            f"{p.get('symbols_done', '?')}/{p.get('symbols', '?')} symbols"
        )
    return getattr(event, "subject", "") or ""


@register.filter
def event_url(event: Any) -> str:
    """The dashboard page an event is about, when there is one."""
    from django.urls import NoReverseMatch, reverse

    p = _payload(event)
    kind = getattr(event, "type", "")
    try:
        if kind.startswith("drift.report") and isinstance(p.get("report_id"), int):
            return reverse("dashboard:drift-report-detail", args=[p["report_id"]])
        if kind.startswith("models.") and p.get("model"):
            return reverse("dashboard:model-detail", args=[p["model"]])
        if kind.startswith("features.") and isinstance(p.get("job_id"), int):
            return reverse("dashboard:feature-job-detail", args=[p["job_id"]])
        if kind.startswith("features.") and p.get("view"):
            return reverse("dashboard:feature-view-detail", args=[p["view"]])
    except NoReverseMatch:
        return ""
    return ""


@register.simple_tag(takes_context=True)
def sort_header(context: Any, column: str, label: str = "") -> str:
    """A table header link that sorts by `column` (descending first, then toggling), keeping
    the other query parameters; the sorted column carries aria-sort."""
    request = context["request"]
    query = request.GET.copy()
    current, direction = query.get("sort", ""), query.get("dir", "desc")
    active = current == column
    query["sort"] = column
    query["dir"] = ("asc" if direction == "desc" else "desc") if active else "desc"
    query.pop("page", None)
    sort_state = ("ascending" if direction == "asc" else "descending") if active else None
    if sort_state:
        return format_html(
            '<a href="?{}" aria-sort="{}">{}</a>', query.urlencode(), sort_state, label or column
        )
    return format_html('<a href="?{}">{}</a>', query.urlencode(), label or column)


@register.filter
def value_text(value: Any, digits: int = 5) -> str:
    """A statistic of any type for a key-value table: numbers to `digits` significant places."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{int(digits)}g}" if math.isfinite(value) else "—"
    return str(value)

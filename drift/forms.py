"""The drift report list's filters (model, version, severity, window-end dates): parsed here,
applied by drift.selectors.drift_reports."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django import forms

from drift.models import Severity
from drift.selectors import ReportFilter

SEVERITY_CHOICES = [("", "any severity")] + [
    (f">={s}", f"{s} or worse") for s in (Severity.LOW, Severity.MEDIUM)
] + [(s, f"{s} only") for s in Severity.values]  # fmt: skip


class ReportFilterForm(forms.Form):
    model = forms.ChoiceField(required=False)
    version = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    severity = forms.ChoiceField(required=False, choices=SEVERITY_CHOICES)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: object, model_names: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["model"].choices = [("", "all models")] + [(n, n) for n in model_names]

    def report_filter(self) -> ReportFilter:
        """The filter of the valid fields (an invalid field is left out and shown as an error)."""
        data = self.cleaned_data if self.is_valid() else {
            k: v for k, v in getattr(self, "cleaned_data", {}).items() if k not in self.errors
        }  # fmt: skip
        severity = data.get("severity") or ""
        since, until = data.get("since"), data.get("until")
        return ReportFilter(
            model=data.get("model") or "",
            version=data.get("version"),
            severities=(severity,) if severity in Severity.values else (),
            min_severity=severity[2:] if severity.startswith(">=") else "",
            since=datetime.combine(since, time.min, tzinfo=UTC) if since else None,
            # the whole `until` day: window ends before the next midnight
            until=datetime.combine(until, time.min, tzinfo=UTC) + timedelta(days=1)
            - timedelta(microseconds=1) if until else None,
        )  # fmt: skip

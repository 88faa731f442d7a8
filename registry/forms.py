"""The dashboards' promotion and rollback forms: they only parse input; the rules (policy,
override permission, justification length, the Production version the user saw) are checked by
registry.services.version_transition / version_rollback."""

from __future__ import annotations

from django import forms

from registry.services import MAX_REASON_CHARS


class TransitionForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_REASON_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required and recorded in the stage history.",
    )
    override_justification = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Only to apply despite failed rules: at least 10 characters, recorded. "
        "Failed permission or artifact-hash rules cannot be overridden.",
    )
    # The Production version the user saw when the page was rendered ("" for none): if another
    # promotion changed it meanwhile, the service refuses with a conflict instead of acting on
    # a state the user never saw.
    expected_production = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("A reason is required.")
        return reason

    def clean_override_justification(self) -> str:
        return self.cleaned_data["override_justification"].strip()

    def clean_expected_production(self) -> int | None:
        value = self.cleaned_data["expected_production"].strip()
        if not value:
            return None
        if not value.isdigit():
            raise forms.ValidationError("expected_production must be a version id")
        return int(value)


class RollbackForm(forms.Form):
    reason = forms.CharField(max_length=MAX_REASON_CHARS, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("A reason is required.")
        return reason

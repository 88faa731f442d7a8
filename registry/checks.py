"""`manage.py check` (and every server start) refuses a promotion policy file it cannot use."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register

from registry.policy import PolicyError, policy_active


@register()
def promotion_policy_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        policy_active()
    except PolicyError as exc:
        return [
            Error(
                str(exc),
                hint="Fix the file, or unset PROMOTION_POLICY_FILE to use the shipped default.",
                id="registry.E001",
            )
        ]
    return []

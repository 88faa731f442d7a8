"""Fixtures of the security tests: the registry's (versions with artifacts, users holding the
registry permissions), an auditor and a superuser."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission

from tests.registry.conftest import (  # noqa: F401  (fixtures, registered for this folder)
    artifact_root,
    feature_view,
    make_run,
    make_version,
    overrider,
    promoter,
)


@pytest.fixture
def superuser(django_user_model: Any, password: str) -> Any:
    return django_user_model.objects.create_superuser("root", "root@example.com", password)


@pytest.fixture
def auditor(django_user_model: Any, password: str) -> Any:
    """Not staff, not superuser: only the audit log's view permission."""
    user = django_user_model.objects.create_user("auditor", password=password)
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    return type(user).objects.get(pk=user.pk)

"""reliability.md T15: the installed dependencies meet the security floors, and requirements.lock
(what a deployment installs) agrees; the admin's login is rate limited.

Anonymous `/admin/` (302 to the login) and `/api/v1/schema/` (login required) are part of the
route walk in tests/security/test_authz_walk.py; anonymous `/metrics` is in
tests/tradingsite/test_metrics_exposure.py. `pip-audit -r requirements.lock` needs a vulnerability
database over the network, which these machines do not have, so it is not run here.
"""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any

import pytest
from django.test import Client
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support import ROOT

# Each floor closes a published advisory (reliability.md T15).
FLOORS = {
    "django": "5.2.11",
    "djangorestframework": "3.17.2",
    "daphne": "4.2.2",
    "channels": "3.0.3",
    "pyjwt": "2.4",
    "celery": "5.2.2",
    "djangorestframework-simplejwt": "5.4.0",  # #814
}
OPTIONAL = {"djangorestframework-simplejwt"}  # checked only when installed


def locked_versions() -> dict[str, Version]:
    pins = re.findall(
        r"^([A-Za-z0-9_.\-]+)==([^\s;#\\]+)", (ROOT / "requirements.lock").read_text(), re.M
    )
    return {canonicalize_name(name): Version(version) for name, version in pins}


def installed_version(name: str) -> Version | None:
    try:
        return Version(metadata.version(name))
    except metadata.PackageNotFoundError:
        return None


@pytest.mark.parametrize(("name", "floor"), FLOORS.items(), ids=list(FLOORS))
def test_installed_and_locked_versions_meet_the_floor_and_agree(name: str, floor: str) -> None:
    installed, locked = installed_version(name), locked_versions().get(canonicalize_name(name))
    if installed is None and locked is None and name in OPTIONAL:
        pytest.skip(f"{name} is not a dependency")
    assert installed is not None, f"{name} is not installed"
    assert locked is not None, f"{name} is not pinned in requirements.lock"
    assert installed >= Version(floor), f"{name} {installed} is below the floor {floor}"
    assert installed == locked, f"{name}: installed {installed}, requirements.lock {locked}"


def test_the_lock_parser_reads_a_below_floor_pin() -> None:
    """The control: a pin below a floor is found, named and compared."""
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;#\\]+)", "Django==5.2.10 \\\n", re.M)
    assert pins == [("Django", "5.2.10")]
    assert Version(pins[0][1]) < Version(FLOORS["django"])


@pytest.mark.django_db
def test_the_admin_login_is_rate_limited(settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": "3/60"}
    client = Client(REMOTE_ADDR="203.0.113.77")
    statuses = [
        client.post("/admin/login/", {"username": "root", "password": f"guess-{i}"}).status_code
        for i in range(5)
    ]
    assert statuses[:3] == [200, 200, 200]  # the form again, with its error
    assert statuses[3:] == [429, 429]
    # another address is not affected
    assert Client(REMOTE_ADDR="203.0.113.78").get("/admin/login/").status_code == 200

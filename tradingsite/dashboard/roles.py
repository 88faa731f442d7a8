"""Roles as Django groups and permissions (README "Roles").

- analyst: reads every dashboard (the `view_*` permissions below), changes nothing; every
  signed-in user may read the API, and an analyst is refused every API write (403);
- researcher: an analyst who may also track experiments, through /api/v1 and MLflow's API
  (create, change and delete experiments and runs; log params, metrics, tags and artifacts);
- data engineer: an analyst who may also ingest market bars and start materializations;
- model admin: an analyst who may also promote and roll back model versions
  (`registry.promote_modelversion`, the permission the promotion service and the admin check).

The roles are orthogonal: a user may be in several groups (a researcher who promotes is in
"researcher" and "model admin"). Each section of the dashboards needs its own view permission,
so a user can be given part of them; superusers hold every permission. The groups are created
(and their permissions topped up) after every `migrate`, and by `bootstrap_demo`;
`manage.py create_api_user --role ...` puts a user in them.
"""

from __future__ import annotations

from typing import Any

from experiments.constants import TRACKING_PERMISSIONS
from features.constants import INGEST_BARS_PERMISSION, MATERIALIZE_PERMISSION
from registry.policy import OVERRIDE_PERMISSION, PROMOTE_PERMISSION

ANALYST_GROUP = "analyst"
RESEARCHER_GROUP = "researcher"
DATA_ENGINEER_GROUP = "data engineer"
MODEL_ADMIN_GROUP = "model admin"

# The permission each dashboard section needs.
OVERVIEW_PERMISSION = "registry.view_modelversion"
MODELS_PERMISSION = "registry.view_modelversion"
DRIFT_PERMISSION = "drift.view_driftreport"
EXPERIMENTS_PERMISSION = "experiments.view_run"
FEATURES_PERMISSION = "features.view_featureview"

ANALYST_PERMISSIONS = (
    "registry.view_registeredmodel",
    "registry.view_modelversion",
    "registry.view_stagetransition",
    "registry.view_modelalias",
    "drift.view_driftreport",
    "drift.view_driftscan",
    "experiments.view_experiment",
    "experiments.view_run",
    "experiments.view_artifact",
    "features.view_featureview",
    "features.view_featuredefinition",
    "features.view_materializationjob",
)
RESEARCHER_PERMISSIONS = (*ANALYST_PERMISSIONS, *TRACKING_PERMISSIONS)
DATA_ENGINEER_PERMISSIONS = (*ANALYST_PERMISSIONS, INGEST_BARS_PERMISSION, MATERIALIZE_PERMISSION)
MODEL_ADMIN_PERMISSIONS = (*ANALYST_PERMISSIONS, PROMOTE_PERMISSION)

# Each group with its permissions; the keys are the group names.
ROLES = {
    ANALYST_GROUP: ANALYST_PERMISSIONS,
    RESEARCHER_GROUP: RESEARCHER_PERMISSIONS,
    DATA_ENGINEER_GROUP: DATA_ENGINEER_PERMISSIONS,
    MODEL_ADMIN_GROUP: MODEL_ADMIN_PERMISSIONS,
}


def can_promote(user: Any) -> bool:
    """Promote, archive and roll back from the dashboards (the service checks again)."""
    return bool(getattr(user, "is_active", False) and user.has_perm(PROMOTE_PERMISSION))


def can_override(user: Any) -> bool:
    return bool(getattr(user, "is_active", False) and user.has_perm(OVERRIDE_PERMISSION))


def _permissions(names: tuple[str, ...]) -> list[Any]:
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    query = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".", 1)
        query |= Q(content_type__app_label=app_label, codename=codename)
    return list(Permission.objects.filter(query))


def roles_ensure() -> dict[str, int]:
    """Create the ROLES groups if absent and give them their permissions (added, never
    removed: an operator may have granted more). Returns permissions per group."""
    from django.contrib.auth.models import Group

    counts = {}
    for name, permissions in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        found = _permissions(permissions)
        group.permissions.add(*found)
        counts[name] = len(found)
    return counts


def roles_ensure_after_migrate(**kwargs: Any) -> None:
    """post_migrate receiver; this app comes after the apps whose permissions it grants, so
    their permissions exist by the time it runs."""
    roles_ensure()

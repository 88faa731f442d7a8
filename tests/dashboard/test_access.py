"""Who sees what: anonymous visitors are sent to the login page, analysts read every page and
change nothing (admin-only controls are not rendered, the POST views answer 403), a user without
a section's permission gets a 403 page, every form carries a CSRF token."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.test import Client

from registry.models import StageTransition
from tests.dashboard import seed as demo
from tradingsite.dashboard.roles import ANALYST_GROUP, MODEL_ADMIN_GROUP, roles_ensure
from tradingsite.security.ratelimit import route_class

pytestmark = pytest.mark.django_db
PROMOTE = "/dashboard/models/next-bar-direction/versions/2/promote/?stage=Production"
ROLLBACK = "/dashboard/models/next-bar-direction/rollback/"


def pages(seeded: dict[str, Any]) -> list[str]:
    from drift.models import DriftReport

    runs = seeded["runs"]
    report = DriftReport.objects.filter(model_version=seeded["production"]).first()
    job = seeded["view"].jobs.first()
    return [
        "/dashboard/",
        "/dashboard/?fragment=events",
        "/dashboard/drift/",
        f"/dashboard/drift/reports/{report.pk}/",
        "/dashboard/models/",
        "/dashboard/models/next-bar-direction/",
        "/dashboard/models/next-bar-direction/versions/1/",
        "/dashboard/experiments/",
        f"/dashboard/experiments/{runs[0].experiment_id}/",
        f"/dashboard/experiments/runs/{runs[0].run_uuid}/",
        "/dashboard/experiments/compare/?" + "&".join(f"run={r.run_uuid}" for r in runs),
        "/dashboard/features/",
        "/dashboard/features/views/core_technical/",
        f"/dashboard/features/jobs/{job.pk}/",
    ]


def test_anonymous_visitors_are_sent_to_the_login_page(seeded: dict[str, Any]) -> None:
    client = Client()
    for path in [*pages(seeded), PROMOTE, ROLLBACK]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/dashboard/login/?next="), path


def test_an_analyst_reads_every_page(analyst: Client, seeded: dict[str, Any]) -> None:
    for path in pages(seeded):
        response = analyst.get(path)
        assert response.status_code == 200, (path, response.content[:500])


def test_the_login_page_logs_in_and_goes_where_the_visitor_wanted(seeded: dict[str, Any]) -> None:
    client = Client()
    page = client.get("/dashboard/login/?next=/dashboard/drift/")
    assert b"csrfmiddlewaretoken" in page.content
    response = client.post(
        "/dashboard/login/",
        {"username": demo.ANALYST, "password": demo.PASSWORD, "next": "/dashboard/drift/"},
    )
    assert response.status_code == 302 and response["Location"] == "/dashboard/drift/"
    wrong = Client().post("/dashboard/login/", {"username": demo.ANALYST, "password": "nope"})
    assert wrong.status_code == 200 and b"did not match" in wrong.content


def test_logging_in_counts_against_the_auth_rate_limit() -> None:
    from django.test import RequestFactory

    assert route_class(RequestFactory().post("/dashboard/login/")) == "auth"
    assert route_class(RequestFactory().get("/dashboard/login/")) == "api"


def test_logging_out_takes_a_post(analyst: Client) -> None:
    assert analyst.post("/dashboard/logout/").status_code == 302
    assert analyst.get("/dashboard/").status_code == 302


def test_analysts_see_no_promotion_or_rollback_controls(
    analyst: Client, admin: Client, seeded: dict[str, Any]
) -> None:
    for path in (
        "/dashboard/models/next-bar-direction/",
        "/dashboard/models/next-bar-direction/versions/2/",
    ):
        body = analyst.get(path).content.decode()
        assert "promote-link" not in body and "rollback-button" not in body
        assert "/promote/" not in body and "/rollback/" not in body
        assert "analyst · read-only" in body
        admin_body = admin.get(path).content.decode()
        assert "promote-link" in admin_body and "model admin" in admin_body
    assert "rollback-button" not in admin.get("/dashboard/models/mean-reversion/").content.decode()


def test_the_promotion_and_rollback_views_refuse_analysts(
    analyst: Client, seeded: dict[str, Any]
) -> None:
    before = StageTransition.objects.count()
    assert analyst.get(PROMOTE).status_code == 403
    refused = analyst.post(PROMOTE, {"reason": "mine now", "stage": "Production"})
    assert refused.status_code == 403
    assert b"registry.promote_modelversion" in refused.content
    assert analyst.get(ROLLBACK).status_code == 403
    assert analyst.post(ROLLBACK, {"reason": "back"}).status_code == 403
    assert StageTransition.objects.count() == before
    seeded["candidate"].refresh_from_db()
    assert seeded["candidate"].stage == "None"


def test_a_user_without_the_analyst_role_gets_a_403_page(seeded: dict[str, Any]) -> None:
    get_user_model().objects.create_user("nobody", password=demo.PASSWORD)
    client = Client()
    client.login(username="nobody", password=demo.PASSWORD)
    response = client.get("/dashboard/")
    assert response.status_code == 403
    assert b"analyst role" in response.content


def test_each_section_needs_its_own_view_permission(seeded: dict[str, Any]) -> None:
    user = get_user_model().objects.create_user("drift_only", password=demo.PASSWORD)
    user.user_permissions.add(Permission.objects.get(codename="view_driftreport"))
    client = Client()
    client.login(username="drift_only", password=demo.PASSWORD)
    assert client.get("/dashboard/drift/").status_code == 200
    body = client.get("/dashboard/drift/").content.decode()
    assert 'href="/dashboard/experiments/"' not in body  # the navigation hides the rest
    for path in ("/dashboard/", "/dashboard/models/", "/dashboard/experiments/",
                 "/dashboard/features/"):  # fmt: skip
        assert client.get(path).status_code == 403, path


def test_the_roles_are_groups_with_view_and_promote_permissions(db: None) -> None:
    roles_ensure()
    counts = roles_ensure()  # idempotent
    from django.contrib.auth.models import Group

    analyst = {f"{p.content_type.app_label}.{p.codename}"
               for p in Group.objects.get(name=ANALYST_GROUP).permissions.all()}  # fmt: skip
    admin = {f"{p.content_type.app_label}.{p.codename}"
             for p in Group.objects.get(name=MODEL_ADMIN_GROUP).permissions.all()}  # fmt: skip
    assert "drift.view_driftreport" in analyst and "registry.promote_modelversion" not in analyst
    assert admin - analyst == {"registry.promote_modelversion"}
    assert (counts[ANALYST_GROUP], counts[MODEL_ADMIN_GROUP]) == (len(analyst), len(admin))
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_")) for p in admin)


def test_posts_without_a_csrf_token_are_refused(seeded: dict[str, Any]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.login(username=demo.ADMIN, password=demo.PASSWORD)
    page = client.get(PROMOTE)
    assert b'name="csrfmiddlewaretoken"' in page.content
    before = StageTransition.objects.count()
    response = client.post(PROMOTE, {"reason": "no token", "stage": "Production"})
    assert response.status_code == 403
    assert StageTransition.objects.count() == before


def test_pages_load_scripts_from_this_site_only(analyst: Client, seeded: dict[str, Any]) -> None:
    body = analyst.get("/dashboard/").content.decode()
    sources = re.findall(r'<script[^>]* src="([^"]+)"', body)
    assert sources == [
        "/static/vendor/plotly/plotly.min.js",
        "/static/dashboard/charts.js",
        "/static/dashboard/live.js",
    ]
    assert "cdn" not in body.lower() and "https://" not in body


def test_plotly_js_is_served_from_the_installed_plotly_package(client: Client) -> None:
    import plotly

    found = finders.find("vendor/plotly/plotly.min.js")
    assert found and found.startswith(str(__import__("pathlib").Path(plotly.__file__).parent))
    response = client.get("/static/vendor/plotly/plotly.min.js")
    assert response.status_code == 200
    head = (
        b"".join(response.streaming_content)[:300] if response.streaming else response.content[:300]
    )
    assert b"plotly.js" in head

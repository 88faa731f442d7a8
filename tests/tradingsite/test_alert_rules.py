"""The Prometheus alert rules and the Grafana dashboard name only metrics the app exports.

Every PromQL expression in docker/alerts.yml and docker/grafana/dashboards/tradingsite.json is
tokenized and each metric it selects is looked up in prometheus_client's registry, as filled by
the app's metric modules: renaming a metric in code without updating the rules fails here.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from prometheus_client import REGISTRY

from tradingsite.observability.metrics import HTTP_LATENCY_BUCKETS
from tradingsite.observability.slo import SLO_SECONDS

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "docker" / "alerts.yml"
PROMETHEUS_CONFIG = ROOT / "docker" / "prometheus.yml"
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "tradingsite.json"
COMPOSE = ROOT / "docker-compose.yml"
METRIC_MODULES = (
    "tradingsite.observability.metrics",
    "drift.metrics",
    "registry.metrics",
    "features.metrics",
)
# Series Prometheus itself writes for each scrape target, not the app.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
     "unless", "offset", "inf", "nan"}
)  # fmt: skip
SEVERITIES = {"critical", "warning"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_LABEL_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression: identifiers that are not functions or
    aggregations (followed by `(`), keywords, label names (inside `{}` or a grouping clause)
    or durations, once strings, Grafana variables and range selectors are gone."""
    text = _GRAFANA_VARIABLE.sub("5m", _STRING.sub('""', expr))
    text = _RANGE.sub("", _LABEL_MATCHERS.sub("", _GROUPING.sub("", text)))
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, rest = match.group(), text[match.end() :].lstrip()
        if rest.startswith("(") or name.lower() in PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def exported_series() -> set[str]:
    """Every series name the app's registry can expose: counters as `<name>_total`, histograms
    as `_bucket`/`_sum`/`_count`, gauges and collectors (drift severity) by their own name."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    # The registry's own index of the names each collector exposes (the exposition's names).
    return set(REGISTRY._names_to_collectors)


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


# --- the tokenizer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up == 0", {"up"}),
        (
            'sum by (route_class) (rate(http_requests_total{outcome="server_error"}[5m])) '
            "/ sum by (route_class) (rate(http_requests_total[5m])) > 0.01",
            {"http_requests_total"},
        ),
        (
            'histogram_quantile(0.99, sum(rate(lat_seconds_bucket{le!="+Inf"}[1h:5m])) '
            "by (le, job))",
            {"lat_seconds_bucket"},
        ),
        ("a_total / on(job) group_left(instance) b offset 5m", {"a_total", "b"}),
        ("max without (pid) (g) > bool 1e3", {"g"}),
        ("sum(rate(x_count[$__rate_interval])) and ignoring(le) y", {"x_count", "y"}),
        ('label_replace(m, "dst", "$1", "src", "(.*)")', {"m"}),
    ],
)
def test_the_tokenizer_finds_exactly_the_metric_names(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_a_renamed_metric_is_not_in_the_exported_series() -> None:
    exported = exported_series()
    assert "tradingsite_http_requests_total" in exported
    assert "tradingsite_http_request_duration_seconds_bucket" in exported
    assert "tradingsite_http_request_total" not in exported


# --- the alert rules ------------------------------------------------------------------------------


def test_the_rule_file_has_the_structure_prometheus_loads() -> None:
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}
    assert document["groups"], "no rule groups"
    for group in document["groups"]:
        assert isinstance(group["name"], str) and group["name"]
        assert group["rules"], f"group {group['name']} has no rules"
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"]), rule["alert"]
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert re.fullmatch(r"\d+[smhd]", str(rule["for"])), rule["alert"]
            assert set(rule["labels"]) <= {"severity", "slo"}, rule["alert"]
            assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


def test_every_alert_expression_names_only_metrics_the_app_exports() -> None:
    exported = exported_series() | PROMETHEUS_SERIES
    for rule in alert_rules():
        names = metric_names(rule["expr"])
        assert names, f"{rule['alert']}: no metric in {rule['expr']!r}"
        assert names <= exported, f"{rule['alert']}: unknown {sorted(names - exported)}"


def test_the_seed_alerts_exist() -> None:
    # Seed §7: high 5xx rate, drift severity HIGH, feature quality below threshold.
    by_metric: dict[str, list[str]] = {}
    for rule in alert_rules():
        for name in metric_names(rule["expr"]):
            by_metric.setdefault(name, []).append(rule["expr"])
    assert any('outcome="server_error"' in e for e in by_metric["tradingsite_http_requests_total"])
    assert any(">= 3" in e for e in by_metric["tradingsite_drift_severity"])
    assert by_metric["tradingsite_feature_quality_score"]
    assert any('outcome="failed"' in e for e in by_metric["tradingsite_drift_scans_total"])
    assert any("== 2" in e for e in by_metric["tradingsite_circuit_breaker_state"])


def test_the_feature_quality_alert_uses_the_settings_threshold() -> None:
    rule = next(r for r in alert_rules() if r["alert"] == "TradingsiteFeatureQualityLow")
    threshold = float(rule["expr"].rsplit("<", 1)[1])
    assert threshold == settings.FEATURE_QUALITY_MIN


def test_each_route_class_has_a_latency_alert_at_its_slo() -> None:
    thresholds: dict[str, float] = {}
    for rule in alert_rules():
        if "histogram_quantile(0.99" not in rule["expr"]:
            continue
        classes = re.search(r'route_class=~"([^"]+)"', rule["expr"]).group(1).split("|")
        threshold = float(rule["expr"].rsplit(">", 1)[1])
        for klass in classes:
            assert klass not in thresholds, f"{klass} has two latency alerts"
            thresholds[klass] = threshold
    assert thresholds == SLO_SECONDS
    # "share under the target" is exact only when each target is a bucket edge
    assert set(SLO_SECONDS.values()) <= set(HTTP_LATENCY_BUCKETS)


def test_prometheus_loads_the_rules_and_compose_mounts_them() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    prometheus = yaml.safe_load(COMPOSE.read_text())["services"]["prometheus"]
    assert "./docker/alerts.yml:/etc/prometheus/alerts.yml:ro" in prometheus["volumes"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules_and_the_scrape_config(tmp_path: Path) -> None:
    rules = subprocess.run(
        ["promtool", "check", "rules", "--lint-fatal", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    # The config names container paths; point them at the repository's file and a token file.
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["rule_files"] = [str(ALERTS)]
    token = tmp_path / "metrics_token"
    token.write_text("a-metrics-token")
    for job in config["scrape_configs"]:
        job["authorization"]["credentials_file"] = str(token)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    checked = subprocess.run(
        ["promtool", "check", "config", "--lint-fatal", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# --- the Grafana dashboard ------------------------------------------------------------------------


def test_the_dashboard_is_grafana_json_with_unique_panel_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        assert panel["targets"], panel["title"]


def test_every_dashboard_expression_names_only_metrics_the_app_exports() -> None:
    exported = exported_series()
    exprs = dashboard_exprs()
    used = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= exported, f"unknown {sorted(names - exported)} in {expr!r}"
        used |= names
    # the panels the issue asks for: traffic, errors and latency per route class, drift,
    # feature quality, predictions served, breaker states
    assert {
        "tradingsite_http_requests_total",
        "tradingsite_http_request_duration_seconds_bucket",
        "tradingsite_drift_severity",
        "tradingsite_feature_quality_score",
        "tradingsite_predictions_total",
        "tradingsite_circuit_breaker_state",
    } <= used

"""The promotion policy: which rules a version must pass to enter a stage.

The policy is configuration, not code: a YAML or JSON file named by the PROMOTION_POLICY_FILE
setting (registry/policy_default.yaml when unset). This module only parses the file and evaluates
rules over `PromotionFacts`, plain values gathered beforehand by `registry.selectors`; it never
touches the database, so every rule is testable on its own.

File format (see policy_default.yaml for the documented default)::

    version: 1
    stages:                       # target stage -> rules checked when a version enters it
      Production:
        - {rule: min_metric, metric: accuracy, value: 0.52}
        - {rule: beats_production, metric: roc_auc, direction: higher, min_margin: 0.0}
        - {rule: no_open_high_drift}
        - {rule: feature_quality_min, threshold: 80}
        - {rule: artifact_hash_verifies}
        - {rule: required_permission}         # permission defaults to registry.promote_modelversion
    rollback: [...]               # rules for a rollback to Production (default: stages.Production)

A stage that the file does not list has no rules. `required_permission` and
`artifact_hash_verifies` cannot be overridden: an override skips only the other rules.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from registry.models import Stage

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent / "policy_default.yaml"
PROMOTE_PERMISSION = "registry.promote_modelversion"
OVERRIDE_PERMISSION = "registry.override_promotion_policy"
NOT_OVERRIDABLE = frozenset({"required_permission", "artifact_hash_verifies"})
ROLLBACK = "rollback"


class PolicyError(ImproperlyConfigured):
    """The policy file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Rule:
    kind: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Policy:
    source: str
    stages: dict[str, tuple[Rule, ...]]
    rollback: tuple[Rule, ...]

    def rules_for(self, stage: str, *, rollback: bool = False) -> tuple[Rule, ...]:
        return self.rollback if rollback else self.stages.get(stage, ())


@dataclass(frozen=True)
class PromotionFacts:
    """What the rules look at, gathered by registry.selectors.promotion_facts."""

    version_label: str
    metrics: dict[str, float | None]
    production_label: str | None = None  # None: no other version is in Production
    production_metrics: dict[str, float | None] = field(default_factory=dict)
    open_high_drift: str | None = None  # description of the open HIGH report, if any
    feature_view_label: str | None = None
    feature_quality: float | None = None  # latest succeeded materialization's score
    artifact_verifies: bool | None = None  # None: not checked (no rule needs it)
    actor_permissions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "passed": self.passed, "reason": self.reason}


def _number(params: dict[str, Any], key: str, where: str) -> float:
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: '{key}' must be a finite number, got {value!r}")
    return float(value)


def _text(params: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = params.get(key, default)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    return value


# rule kind -> (required/optional parameter names, validator of the parameters)
def _check_min_metric(p: dict[str, Any], where: str) -> None:
    _text(p, "metric", where)
    _number(p, "value", where)


def _check_beats_production(p: dict[str, Any], where: str) -> None:
    _text(p, "metric", where)
    if p.get("direction", "higher") not in ("higher", "lower"):
        raise ValueError(f"{where}: 'direction' must be 'higher' or 'lower'")
    if "min_margin" in p and _number(p, "min_margin", where) < 0:
        raise ValueError(f"{where}: 'min_margin' must be >= 0")


def _check_feature_quality(p: dict[str, Any], where: str) -> None:
    _number(p, "threshold", where)


def _check_permission(p: dict[str, Any], where: str) -> None:
    permission = _text(p, "permission", where, default=PROMOTE_PERMISSION)
    if "." not in permission:
        raise ValueError(f"{where}: 'permission' must be '<app_label>.<codename>'")


def _check_none(p: dict[str, Any], where: str) -> None:
    return None


RULE_PARAMS: dict[str, tuple[frozenset[str], Any]] = {
    "min_metric": (frozenset({"metric", "value"}), _check_min_metric),
    "beats_production": (
        frozenset({"metric", "direction", "min_margin"}),
        _check_beats_production,
    ),
    "no_open_high_drift": (frozenset(), _check_none),
    "feature_quality_min": (frozenset({"threshold"}), _check_feature_quality),
    "artifact_hash_verifies": (frozenset(), _check_none),
    "required_permission": (frozenset({"permission"}), _check_permission),
}


def _rules_parse(items: Any, where: str) -> tuple[Rule, ...]:
    if not isinstance(items, list):
        raise ValueError(f"{where}: must be a list of rules")
    rules = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("rule"), str):
            raise ValueError(f"{at}: each rule must be a mapping with a 'rule' name")
        params = {k: v for k, v in item.items() if k != "rule"}
        kind = item["rule"]
        if kind not in RULE_PARAMS:
            raise ValueError(f"{at}: unknown rule {kind!r}; known rules: {sorted(RULE_PARAMS)}")
        allowed, check = RULE_PARAMS[kind]
        if unknown := sorted(set(params) - allowed):
            raise ValueError(f"{at}: rule {kind!r} does not take {unknown}")
        check(params, f"{at} ({kind})")
        rules.append(Rule(kind=kind, params=params))
    return tuple(rules)


def policy_parse(data: Any, *, source: str) -> Policy:
    """A Policy from the file's decoded content; PolicyError naming `source` when it is wrong."""
    try:
        if not isinstance(data, dict):
            raise ValueError("the top level must be a mapping with 'version' and 'stages'")
        if unknown := sorted(set(data) - {"version", "stages", ROLLBACK}):
            raise ValueError(f"unknown top-level keys {unknown}")
        if data.get("version") != 1:
            raise ValueError(f"'version' must be 1, got {data.get('version')!r}")
        stages_in = data.get("stages")
        if not isinstance(stages_in, dict):
            raise ValueError("'stages' must be a mapping of stage name to a list of rules")
        stages = {}
        for stage, items in stages_in.items():
            if stage not in Stage.values:
                raise ValueError(f"stages: unknown stage {stage!r}; stages are {Stage.values}")
            stages[stage] = _rules_parse(items, f"stages.{stage}")
        if ROLLBACK in data:
            rollback = _rules_parse(data[ROLLBACK], ROLLBACK)
        else:
            rollback = stages.get(Stage.PRODUCTION, ())
    except ValueError as exc:
        raise PolicyError(f"promotion policy {source}: {exc}") from exc
    return Policy(source=source, stages=stages, rollback=rollback)


def policy_read(path: Path) -> Policy:
    """Parse the policy file at `path` (.yaml/.yml or .json)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"promotion policy {path}: cannot be read ({exc.strerror})") from exc
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise PolicyError(f"promotion policy {path}: the name must end .yaml, .yml or .json")
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise PolicyError(f"promotion policy {path}: not valid {path.suffix[1:]}: {exc}") from exc
    return policy_parse(data, source=str(path))


_cache: dict[str, tuple[int, Policy]] = {}


def policy_active() -> Policy:
    """The configured policy, re-read when its file changes (an edit needs no restart)."""
    path = Path(settings.PROMOTION_POLICY_FILE or DEFAULT_POLICY_FILE)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise PolicyError(f"promotion policy {path}: cannot be read ({exc.strerror})") from exc
    cached = _cache.get(str(path))
    if cached is not None and cached[0] == mtime:
        return cached[1]
    policy = policy_read(path)
    _cache[str(path)] = (mtime, policy)
    return policy


# --- evaluation (pure) ------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _min_metric(p: dict[str, Any], facts: PromotionFacts) -> tuple[bool, str]:
    metric, minimum = p["metric"], float(p["value"])
    value = facts.metrics.get(metric)
    if value is None:
        return False, f"{facts.version_label} has no value for metric {metric!r}"
    if value >= minimum:
        return True, f"{metric} {_fmt(value)} >= {_fmt(minimum)}"
    return False, f"{metric} {_fmt(value)} is below the minimum {_fmt(minimum)}"


def _beats_production(p: dict[str, Any], facts: PromotionFacts) -> tuple[bool, str]:
    metric, direction = p["metric"], p.get("direction", "higher")
    margin = float(p.get("min_margin", 0.0))
    if facts.production_label is None:
        return True, "no version is in Production, nothing to beat"
    value = facts.metrics.get(metric)
    current = facts.production_metrics.get(metric)
    if value is None:
        return False, f"{facts.version_label} has no value for metric {metric!r}"
    if current is None:
        return True, f"{facts.production_label} has no value for {metric!r}, nothing to beat"
    gain = value - current if direction == "higher" else current - value
    word = "higher" if direction == "higher" else "lower"
    detail = (
        f"{metric} {_fmt(value)} vs {_fmt(current)} of {facts.production_label} "
        f"({word} is better, margin {_fmt(margin)})"
    )
    return gain > 0 and gain >= margin, detail


def _no_open_high_drift(p: dict[str, Any], facts: PromotionFacts) -> tuple[bool, str]:
    if facts.open_high_drift is None:
        return True, "no open HIGH drift report"
    return False, f"open HIGH drift: {facts.open_high_drift}"


def _feature_quality_min(p: dict[str, Any], facts: PromotionFacts) -> tuple[bool, str]:
    threshold = float(p["threshold"])
    if facts.feature_view_label is None:
        return False, f"{facts.version_label} has no feature view in its lineage"
    if facts.feature_quality is None:
        return False, f"feature view {facts.feature_view_label} has no succeeded materialization"
    score = facts.feature_quality
    ok = score >= threshold
    relation = ">=" if ok else "is below"
    return ok, f"{facts.feature_view_label} quality {_fmt(score)} {relation} {_fmt(threshold)}"


def _artifact_hash_verifies(p: dict[str, Any], facts: PromotionFacts) -> tuple[bool, str]:
    if facts.artifact_verifies:
        return True, "the stored artifact re-hashes to the registered sha256"
    return False, "the stored artifact is missing or does not hash to the registered sha256"


def _required_permission(p: dict[str, Any], facts: PromotionFacts) -> tuple[bool, str]:
    permission = p.get("permission", PROMOTE_PERMISSION)
    if permission in facts.actor_permissions:
        return True, f"actor has {permission}"
    return False, f"actor lacks the permission {permission}"


EVALUATORS = {
    "min_metric": _min_metric,
    "beats_production": _beats_production,
    "no_open_high_drift": _no_open_high_drift,
    "feature_quality_min": _feature_quality_min,
    "artifact_hash_verifies": _artifact_hash_verifies,
    "required_permission": _required_permission,
}


def policy_evaluate(rules: tuple[Rule, ...], facts: PromotionFacts) -> list[RuleResult]:
    """Every rule's result, in the policy's order (no short-circuit: the caller sees them all)."""
    results = []
    for rule in rules:
        passed, reason = EVALUATORS[rule.kind](rule.params, facts)
        results.append(RuleResult(rule=rule.kind, passed=passed, reason=reason))
    return results


def permissions_needed(rules: tuple[Rule, ...]) -> set[str]:
    return {
        r.params.get("permission", PROMOTE_PERMISSION)
        for r in rules
        if r.kind == "required_permission"
    }

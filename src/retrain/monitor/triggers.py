"""Retraining triggers and the rule that combines them into one auditable decision.

Each trigger reads the statistics evaluate recorded and the thresholds in params.yaml
`decide:`, and returns {name, enabled, fired, value, threshold, detail}.
"""

from __future__ import annotations

from typing import Any

from retrain.errors import DataError
from retrain.model.metrics import LOWER_IS_BETTER
from retrain.monitor.stats import (
    adjust,
    auc_standard_error,
    drop_p_value,
    proportion_standard_error,
    two_proportions,
)
from retrain.params import validated
from retrain.records import Decision, Trigger

SCHEMA_CLASSES = ("new_column", "type_change", "new_category", "out_of_range")


def trigger(name: str, enabled: bool, fired: bool, value: Any, threshold: Any, detail: str) -> Trigger:
    return {
        "name": name,
        "enabled": bool(enabled),
        "fired": bool(enabled and fired),
        "value": value,
        "threshold": threshold,
        "detail": detail,
    }


def _no_champion(name: str, params: dict[str, Any], threshold: Any) -> Trigger:
    return trigger(name, params["enabled"], False, None, threshold, "no champion to compare with")


def _not_enough(
    name: str, params: dict[str, Any], value: Any, threshold: Any, rows: int, min_rows: int
) -> Trigger:
    return trigger(
        name, params["enabled"], False, value, threshold, f"not enough data: {rows} rows, needs {min_rows}"
    )


def _worse(metric: str, value: float, threshold: float) -> bool:
    return value > threshold if metric in LOWER_IS_BETTER else value < threshold


def cold_start(evaluation: dict[str, Any], params: dict[str, Any], min_rows: int) -> Trigger:
    """Fires when there is no champion to serve."""
    has = evaluation.get("champion") is not None
    detail = (
        f"champion {evaluation['champion']['version']} in production"
        if has
        else "no champion yet: a first model is needed"
    )
    return trigger("cold_start", params["enabled"], not has, has, True, detail)


def performance(evaluation: dict[str, Any], params: dict[str, Any], min_rows: int) -> Trigger:
    """Fires when the champion's metric on the newest labelled rows it never saw is too low."""
    metric = str(params["metric"])
    name, threshold = f"performance_{metric}", float(params["threshold"])
    scores = evaluation.get("metrics")
    if evaluation.get("champion") is None or scores is None:
        return trigger(
            name, params["enabled"], False, None, threshold, evaluation.get("note", "no champion to evaluate")
        )
    value, rows = scores.get(metric), int(scores.get("rows", 0))
    if rows < min_rows:
        return _not_enough(name, params, value, threshold, rows, min_rows)
    if value is None:
        return trigger(
            name,
            params["enabled"],
            False,
            None,
            threshold,
            f"{metric} undefined on {evaluation.get('labelled_period')} (one class)",
        )
    worse = _worse(metric, value, threshold)
    result = trigger(
        name,
        params["enabled"],
        worse,
        value,
        threshold,
        f"{metric} {value:.4f} {'worse than' if worse else 'within'} {threshold} on "
        f"{rows} unseen rows of {evaluation.get('labelled_period')}",
    )
    baseline = evaluation.get("baseline") or {}
    before = (baseline.get("metrics") or {}).get(metric)
    if result["fired"] and baseline.get("held") and before is not None and _worse(metric, before, threshold):
        result["counted"] = False
        result["answered"] = str(baseline.get("period"))
        result["detail"] += (
            f"; not counted: answered in {baseline.get('period')}, when a "
            f"challenger could not beat the champion's {metric} {before:.4f} "
            "there (a further fall is performance_drop's to catch)"
        )
    return result


def _standard_error(metric: str, scores: dict[str, Any]) -> float:
    rows, value = int(scores.get("rows") or 0), float(scores[metric])
    if metric == "roc_auc":
        positives = round(rows * float(scores.get("positive_rate") or 0))
        return auc_standard_error(value, positives, rows - positives)
    return proportion_standard_error(value, rows)


def performance_drop(evaluation: dict[str, Any], params: dict[str, Any], min_rows: int) -> Trigger:
    """Fires when the champion's metric on the newest unseen labelled rows fell from what it
    scored on its own holdout by `max_drop` or more, and the fall is significant at `alpha`
    (one-sided; standard errors of both measurements, Hanley-McNeil for ROC AUC)."""
    metric = str(params["metric"])
    name, limit = "performance_drop", float(params["max_drop"])
    enabled = params["enabled"]
    baseline = (evaluation.get("baseline") or {}).get("metrics") or {}
    scores = evaluation.get("metrics")
    if evaluation.get("champion") is None:
        return _no_champion(name, params, limit)
    if not scores or baseline.get(metric) is None or scores.get(metric) is None:
        return trigger(
            name,
            enabled,
            False,
            None,
            limit,
            evaluation.get("note", f"{metric} not measurable on the newest rows"),
        )
    rows = int(scores.get("rows", 0))
    drop = round(float(baseline[metric]) - float(scores[metric]), 6)
    if rows < min_rows:
        return _not_enough(name, params, drop, limit, rows, min_rows)
    p = drop_p_value(
        float(baseline[metric]),
        _standard_error(metric, baseline),
        float(scores[metric]),
        _standard_error(metric, scores),
    )
    alpha = float(params["alpha"])
    fired = drop >= limit and p < alpha
    why = "fell" if fired else "a fall below the limit" if drop < limit else "not significant"
    return trigger(
        name,
        enabled,
        fired,
        drop,
        limit,
        f"{metric} {scores[metric]:.4f} on {rows} unseen rows of "
        f"{evaluation.get('labelled_period')} against {baseline[metric]:.4f} on the "
        f"champion's holdout: {why} (drop {drop:+.4f}, p={p:.2g}, alpha {alpha})",
    )


def measured_loss(evaluation: dict[str, Any], metric: str) -> tuple[float | None, str]:
    """The largest performance loss evaluate measured or estimated for the champion against
    its own holdout: realised on the newest labelled rows, estimated on an unlabelled newest
    batch. None when neither can be measured."""
    baseline = evaluation.get("baseline") or {}
    losses = []
    realised, before = (
        (evaluation.get("metrics") or {}).get(metric),
        (baseline.get("metrics") or {}).get(metric),
    )
    if realised is not None and before is not None:
        losses.append(
            (
                round(float(before) - float(realised), 6),
                f"{metric} {realised:.4f} against {before:.4f} on its holdout",
            )
        )
    if not evaluation.get("newest_labelled"):
        now = (evaluation.get("estimated") or {}).get(metric)
        then = (baseline.get("estimated") or {}).get(metric)
        if now is not None and then is not None:
            losses.append(
                (
                    round(float(then) - float(now), 6),
                    f"estimated {metric} {now:.4f} against {then:.4f} on its holdout",
                )
            )
    if not losses:
        return None, "no performance measurable"
    return max(losses)


def confirm(results: list[Trigger], evaluation: dict[str, Any], params: dict[str, Any]) -> None:
    """Mark each fired trigger as counted or not: a trigger listed under `decide.confirm`
    (drift of the data, of the label) explains a change but counts as a reason to retrain only
    when the champion also lost at least `min_drop` of its metric, measured or estimated."""
    listed = set(params["triggers"])
    metric, least = str(params["metric"]), float(params["min_drop"])
    loss, what = measured_loss(evaluation, metric) if listed else (None, "")
    for result in results:
        result["counted"] = result.get("counted", result["fired"]) and result["fired"]
        if not result["counted"] or result["name"] not in listed:
            continue
        if loss is None or loss < least:
            result["counted"] = False
            shown = "none measurable" if loss is None else f"{loss:+.4f}"
            result["detail"] += (
                f"; not counted: no performance loss confirms it ({what}; "
                f"loss {shown}, decide.confirm.min_drop {least})"
            )
        else:
            result["detail"] += f"; confirmed by a loss of {loss:.4f} ({what})"


def answered(named: dict[str, Trigger], evaluation: dict[str, Any], params: dict[str, Any]) -> None:
    """Mark the listed triggers as not counted within `batches` batches after a challenger
    failed to beat the champion (a hold): the change they measure was answered by that
    challenger. Each further challenger that loses to the same champion doubles the span, and a
    promotion ends it; a further significant fall (performance_drop, concept_drift) still counts.
    A challenger that only data growth asked for answers data growth alone: more rows that did
    not help say nothing about a change in the world."""
    baseline = evaluation.get("baseline") or {}
    since = baseline.get("age")
    if not baseline.get("held") or since is None:
        return
    holds = int(baseline.get("holds", 1))
    span = int(params["batches"]) * 2 ** (holds - 1)
    if since > span:
        return
    grown_only = baseline.get("asked_by") == ["data_growth"]
    for key in params["triggers"]:
        if grown_only and key != "data_growth":
            continue
        result = named[key]
        if result["counted"]:
            result["counted"] = False
            result["answered"] = str(baseline["period"])
            result["detail"] += (
                f"; not counted: answered in {baseline['period']}, {since} "
                f"batch(es) ago, when a challenger could not beat the champion "
                f"({holds} in a row; decide.answered.batches {params['batches']}"
                f" doubled per loss: {span})"
            )


def nothing_new_to_learn(results: list[Trigger], evaluation: dict[str, Any]) -> str | None:
    """When a challenger would learn from no labelled row the champion did not (the newest
    labelled batch is the one it was trained through, and the window holds as many rows as it
    trained on), mark every fired trigger as not counted and return that period: a retrain
    would give back the champion, whatever changed in the unlabelled batches since."""
    through = (evaluation.get("champion") or {}).get("trained_through_period")
    growth = evaluation.get("data_growth") or {}
    if through is None or evaluation.get("labelled_period") != through:
        return None
    if growth and growth["window_rows"] != growth["champion_rows"]:
        return None
    for result in results:
        if result["counted"]:
            result["counted"] = False
            result["waiting"] = str(through)
            result["detail"] += (
                f"; not counted: no labelled batch is newer than {through}, which the champion "
                "was trained through, so a challenger would learn what it learned"
            )
    return str(through)


def data_growth(evaluation: dict[str, Any], params: dict[str, Any], min_rows: int) -> Trigger:
    """Fires when a challenger trained now would learn from at least `factor` times the rows the
    champion learned from: typically a first model trained on a single batch, once the window
    has filled. With batches of one size the batch right after a promotion brings at most 2.67
    times (a batch's training part, then that batch whole and the next one's part), so the
    default factor of 3 never fires there."""
    factor = params["factor"]
    growth = evaluation.get("data_growth")
    if evaluation.get("champion") is None:
        return _no_champion("data_growth", params, factor)
    if not growth or not growth.get("champion_rows"):
        return trigger(
            "data_growth", params["enabled"], False, None, factor, "the window's training rows are not known"
        )
    now, then = int(growth["window_rows"]), int(growth["champion_rows"])
    value = round(now / then, 4)
    detail = (
        f"a challenger would train on {now:,} rows, {value:.2f} times the {then:,} the champion "
        f"{evaluation['champion']['version']} trained on (factor {factor})"
    )
    return trigger("data_growth", params["enabled"], value >= factor, value, factor, detail)


def age(evaluation: dict[str, Any], params: dict[str, Any], min_rows: int) -> Trigger:
    """Fires when the champion's training data ended more than `max_batches` periods ago, and
    no challenger failed to beat it since (a hold restarts the count: the champion was found as
    good as a fresh model then)."""
    limit = int(params["max_batches"])
    value = evaluation.get("champion_age")
    if value is None:
        return _no_champion("age", params, limit)
    baseline = evaluation.get("baseline") or {}
    detail = (
        f"trained through {evaluation['champion']['trained_through_period']}, "
        f"{value} batch(es) before {evaluation['as_of']} (limit {limit})"
    )
    if baseline.get("held") and baseline.get("age") is not None and baseline["age"] < value:
        value = baseline["age"]
        detail = (
            f"held against a challenger in {baseline['period']}, {value} batch(es) before "
            f"{evaluation['as_of']} (limit {limit})"
        )
    return trigger("age", params["enabled"], value > limit, value, limit, detail)


def drift_table(evaluation: dict[str, Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every feature's statistics with its thresholds, adjusted p-value and verdict."""
    features = (evaluation.get("drift") or {}).get("features") or {}
    overrides = params["features"]
    alpha, default_psi = float(params["alpha"]), float(params["psi"])
    correction = str(params["correction"])
    tested = [
        f
        for f, s in features.items()
        if s["p_value"] is not None and overrides.get(f, {"enabled": True})["enabled"]
    ]
    adjusted = dict(zip(tested, adjust([features[f]["p_value"] for f in tested], correction), strict=True))
    rows = []
    for name, stat in features.items():
        own = overrides.get(name) or {"enabled": True, "psi": None}
        psi_threshold = float(default_psi if own["psi"] is None else own["psi"])
        p_adj = adjusted.get(name)
        drifted = name in adjusted and p_adj is not None and p_adj < alpha and stat["psi"] >= psi_threshold
        rows.append(
            {
                "feature": name,
                "kind": stat["kind"],
                "psi": stat["psi"],
                "js": stat["js"],
                "test": stat["test"],
                "statistic": stat["statistic"],
                "p_value": stat["p_value"],
                "p_adjusted": p_adj,
                "psi_threshold": psi_threshold,
                "alpha": alpha,
                "monitored": own["enabled"],
                "drifted": bool(drifted),
            }
        )
    return rows


def data_drift(evaluation: dict[str, Any], params: dict[str, Any], min_rows: int) -> Trigger:
    """Fires when the share of drifted features reaches `share`; a feature drifts when its PSI
    passes its threshold and its test stays significant after multiple-testing control."""
    share = float(params["share"])
    if evaluation.get("champion") is None:
        return _no_champion("data_drift", params, share)
    rows = int(evaluation["drift"]["rows"])
    table = drift_table(evaluation, params)
    monitored = [r for r in table if r["monitored"]]
    drifted = [r for r in monitored if r["drifted"]]
    value = round(len(drifted) / len(monitored), 4) if monitored else 0.0
    if rows < min_rows:
        return _not_enough("data_drift", params, value, share, rows, min_rows)
    listed = ", ".join(
        f"{r['feature']} (PSI {r['psi']:.2f})" for r in sorted(drifted, key=lambda r: -r["psi"])[:4]
    )
    detail = (
        f"{len(drifted)} of {len(monitored)} features drifted: {listed}"
        if drifted
        else f"no feature drifted among {len(monitored)}"
    )
    return trigger("data_drift", params["enabled"], bool(drifted) and value >= share, value, share, detail)


def multivariate_drift(evaluation: dict[str, Any], params: dict[str, Any], min_rows: int) -> Trigger:
    """Fires when a classifier tells the newest batch from the reference sample too well."""
    threshold = float(params["auc"])
    if evaluation.get("champion") is None:
        return _no_champion("multivariate_drift", params, threshold)
    domain = evaluation.get("domain_classifier") or {}
    value, rows = domain.get("roc_auc"), int(domain.get("rows", 0))
    if rows < min_rows or value is None:
        return _not_enough("multivariate_drift", params, value, threshold, rows, min_rows)
    return trigger(
        "multivariate_drift",
        params["enabled"],
        value >= threshold,
        value,
        threshold,
        f"domain classifier ROC AUC {value:.3f} (reference vs "
        f"{evaluation['as_of']}; {threshold} or more fires)",
    )


def _proportion_shift(
    name: str,
    evaluation: dict[str, Any],
    key: str,
    count: str,
    params: dict[str, Any],
    min_rows: int,
    alternative: str,
    what: str,
) -> Trigger:
    effect = float(params["min_effect"])
    if evaluation.get("champion") is None:
        return _no_champion(name, params, effect)
    stats = evaluation.get(key)
    if not stats:
        return trigger(
            name, params["enabled"], False, None, effect, evaluation.get("note", "no unseen labelled rows")
        )
    k1, n1 = stats[count], stats["rows"]
    k2, n2 = stats[f"reference_{count}"], stats["reference_rows"]
    diff = round(k1 / n1 - k2 / n2, 6) if n1 and n2 else None
    if n1 < min_rows or diff is None:
        return _not_enough(name, params, diff, effect, n1, min_rows)
    p = two_proportions(k1, n1, k2, n2, alternative)
    size = diff if alternative == "greater" else abs(diff)
    fired = p is not None and p < float(params["alpha"]) and size >= effect
    return trigger(
        name,
        params["enabled"],
        fired,
        diff,
        effect,
        f"{what} {k1 / n1:.3f} vs {k2 / n2:.3f} at training ({diff:+.3f}, "
        f"p={p:.2g}, alpha {params['alpha']})",
    )


def concept_drift(evaluation: dict[str, Any], params: dict[str, Any], min_rows: int) -> Trigger:
    """Fires when the champion's error rate rose significantly above its holdout error rate."""
    return _proportion_shift(
        "concept_drift", evaluation, "concept", "errors", params, min_rows, "greater", "error rate"
    )


def label_shift(evaluation: dict[str, Any], params: dict[str, Any], min_rows: int) -> Trigger:
    """Fires when the positive-label rate moved significantly from the training rate."""
    return _proportion_shift(
        "label_shift", evaluation, "label", "positive", params, min_rows, "two-sided", "positive rate"
    )


def estimated_performance(evaluation: dict[str, Any], params: dict[str, Any], min_rows: int) -> Trigger:
    """On an unlabelled newest batch, the metric expected from the champion's probabilities."""
    metric = str(params["metric"])
    threshold = float(params["threshold"])
    name = f"estimated_{metric}"
    if evaluation.get("champion") is None:
        return _no_champion(name, params, threshold)
    estimated = evaluation.get("estimated") or {}
    value, rows = estimated.get(metric), int(estimated.get("rows", 0))
    if evaluation.get("newest_labelled"):
        return trigger(
            name,
            params["enabled"],
            False,
            value,
            threshold,
            f"{evaluation['as_of']} has labels: measured performance applies",
        )
    if rows < min_rows or value is None:
        return _not_enough(name, params, value, threshold, rows, min_rows)
    worse = _worse(metric, value, threshold)
    return trigger(
        name,
        params["enabled"],
        worse,
        value,
        threshold,
        f"estimated {metric} {value:.4f} on unlabelled {evaluation['as_of']}"
        + ("" if params["enabled"] else " (reported only)"),
    )


def schema_change(evaluation: dict[str, Any], params: dict[str, Any], min_rows: int) -> Trigger:
    """Classify upstream changes; params map each class to stop, retrain or ignore."""
    actions = {c: str(params[c]) for c in SCHEMA_CLASSES}
    if evaluation.get("champion") is None:
        return _no_champion("schema_change", params, actions)
    changes = evaluation.get("schema_changes") or {}
    share = float(params["out_of_range_share"])
    new_share = float(params["new_category_share"])
    listed = changes.get("new_categories") or {}
    new = {c: _new_share(values) for c, values in listed.items()}
    usual = {c: float(u) for c, u in (changes.get("usual_new_categories") or {}).items()}
    outside = changes.get("out_of_range") or {}
    found = {
        "new_column": changes.get("new_columns") or [],
        "type_change": sorted(changes.get("type_changes") or {}),
        "new_category": sorted(c for c, s in new.items() if s - usual.get(c, 0.0) > new_share),
        "out_of_range": sorted(c for c, s in outside.items() if s > share),
    }
    present = {c: cols for c, cols in found.items() if cols}
    shown = {  # a column with the share of rows it counts (an older record lists only names)
        "new_category": {
            c: f"{c} ({new[c]:.1%} of rows" + (f", holdout {usual[c]:.1%})" if c in usual else ")")
            for c, values in listed.items()
            if isinstance(values, dict)
        },
        "out_of_range": {c: f"{c} ({float(s):.1%} of rows)" for c, s in outside.items()},
    }
    text = "; ".join(
        f"{c} in {', '.join(shown.get(c, {}).get(col, col) for col in cols)}" for c, cols in present.items()
    )
    as_usual = [c for c, s in sorted(new.items()) if s > new_share and c not in found["new_category"]]
    if as_usual:
        text += (
            ("; " if text else "")
            + "new categories as the champion's holdout had: "
            + ", ".join(shown["new_category"].get(c, c) for c in as_usual)
        )
    stops = [c for c in present if actions[c] == "stop"]
    if stops and params["enabled"]:
        raise DataError(
            f"upstream schema change against champion "
            f"{evaluation['champion']['version']}: {text}; "
            f"params.yaml decide.schema_change.{stops[0]} is 'stop'"
        )
    fired = any(actions[c] == "retrain" for c in present)
    return trigger(
        "schema_change",
        params["enabled"],
        fired,
        sorted(present),
        actions,
        text or "no change against the champion's schema",
    )


def _new_share(values: dict[str, float] | list[str]) -> float:
    """The share of a batch's rows in new categories (an older record lists only the names)."""
    return sum(values.values()) if isinstance(values, dict) else 1.0


TRIGGERS = {
    "cold_start": cold_start,
    "performance": performance,
    "performance_drop": performance_drop,
    "age": age,
    "data_growth": data_growth,
    "data_drift": data_drift,
    "multivariate_drift": multivariate_drift,
    "concept_drift": concept_drift,
    "label_shift": label_shift,
    "estimated_performance": estimated_performance,
    "schema_change": schema_change,
}


def decide(evaluation: dict[str, Any], params: dict[str, Any]) -> Decision:
    """Evaluate every configured trigger and combine them by the params rule."""
    params = validated("decide", params)
    rule = str(params["rule"])
    min_fired = int(params["min_fired"])
    min_rows = int(params["min_rows"])
    cooldown = int(params["cooldown"])
    force = bool(params["force"])
    results = [fn(evaluation, params[name], min_rows) for name, fn in TRIGGERS.items()]
    confirm(results, evaluation, params["confirm"])
    answered(dict(zip(TRIGGERS, results, strict=True)), evaluation, params["answered"])
    waiting = nothing_new_to_learn(results, evaluation)
    fired = [t for t in results if t["counted"]]
    explained = [t["name"] for t in results if t["fired"] and not t["counted"]]
    cold = any(t["name"] == "cold_start" and t["fired"] for t in results)
    needed = 1 if rule == "any" else min_fired
    rule_text = "any trigger fires" if rule == "any" else f"at least {needed} triggers fire"
    age_now = evaluation.get("champion_age")
    cooling = age_now is not None and age_now < cooldown
    if cold:
        retrain, reason = True, "cold start: no champion"
    elif force:
        retrain, reason = True, "forced by params (decide.force)"
    elif len(fired) >= needed and cooling:
        retrain, reason = (
            False,
            (
                f"cooldown: {', '.join(t['name'] for t in fired)} fired, but "
                f"the champion is {age_now} batch(es) old (cooldown {cooldown})"
            ),
        )
    elif len(fired) >= needed:
        retrain, reason = True, "retrain: " + ", ".join(t["name"] for t in fired)
    else:
        retrain, reason = False, (f"keep the champion: {len(fired)} trigger(s) counted, rule is {rule_text}")
    if waiting is not None and explained and not retrain:
        reason = (
            f"keep the champion: no labelled batch is newer than {waiting}, which it was trained "
            f"through; {', '.join(explained)} fired and wait for newer labels"
        )
    elif explained:
        reason += (
            f"; {', '.join(explained)} fired but did not count (without a performance "
            "loss to confirm it, or answered by a challenger that lost)"
        )
    decision: Decision = {
        "retrain": retrain,
        "as_of": evaluation.get("as_of"),
        "rule": rule_text,
        "reason": reason,
        "fired": [t["name"] for t in fired],
        "unconfirmed": explained,
        "force": force,
        "cooldown": {"batches": cooldown, "champion_age": age_now, "active": cooling},
        "triggers": results,
    }
    if "data_drift" in params and evaluation.get("drift"):
        decision["drift"] = drift_table(evaluation, params["data_drift"])
    return decision


DRIFT_PLOT_COLUMNS = ["feature", "psi", "psi_threshold", "p_adjusted", "drifted"]


def drift_plot(decision: Decision) -> list[dict[str, Any]]:
    """One row per monitored feature, largest PSI first: PSI against its threshold."""
    rows = [r for r in decision.get("drift") or [] if r["monitored"]]
    return [
        {
            "feature": r["feature"],
            "psi": round(r["psi"], 6),
            "psi_threshold": r["psi_threshold"],
            "p_adjusted": "" if r["p_adjusted"] is None else r["p_adjusted"],
            "drifted": int(r["drifted"]),
        }
        for r in sorted(rows, key=lambda r: -r["psi"])
    ]

"""The report's charts, written as SVG text (retrain.reporting.svg): same data, same bytes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from retrain.reporting import svg

ROLE_COLOURS = {"champion": "#1f77b4", "challenger": "#d62728"}
POLICY_COLOURS = {
    "policy": "#d62728",
    "never": "#7f7f7f",
    "every_batch": "#2ca02c",
    "best_schedule": "#9467bd",
}
REFERENCE_COLOUR, CURRENT_COLOUR = "#9fb7cf", "#d62728"
AXIS_NAMES = {
    "fpr": "false positive rate",
    "tpr": "true positive rate (recall)",
    "recall": "recall",
    "precision": "precision",
}
UNIT_TICKS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def _colour(role: str) -> str:
    return ROLE_COLOURS.get(role, "#333")


def short_number(value: float) -> str:
    """A bin edge as a person reads it: 3 significant digits, no exponent below a million."""
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        text = f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return text.replace("e+0", "e").replace("e+", "e")
    return f"{value:.2g}"


def _unit_square(title: str, x_label: str, y_label: str) -> svg.Plot:
    """A 0..1 by 0..1 plot (ROC, precision-recall, calibration) with its axes drawn."""
    canvas = svg.Canvas(420, 380, title)
    plot = svg.Plot(canvas, left=58, top=34, width=340, height=290, x_range=(0, 1), y_range=(0, 1.02))
    return plot.y_ticks(UNIT_TICKS, y_label).x_ticks(UNIT_TICKS, x_label).frame()


def curves(points: dict[str, pd.DataFrame | None], x: str, y: str, title: str, diagonal: bool) -> bytes:
    """One line per model (champion, challenger) of `y` against `x`."""
    drawn = {role: frame for role, frame in points.items() if frame is not None and not frame.empty}
    if not drawn:
        return svg.placeholder(title, "no model was scored on the holdout")
    plot = _unit_square(title, AXIS_NAMES.get(x, x), AXIS_NAMES.get(y, y))
    if diagonal:
        plot.line([0, 1], [0, 1], "#bbb", width=0.8, dashed=True)
    for role, frame in drawn.items():
        plot.line(frame[x].astype(float).tolist(), frame[y].astype(float).tolist(), _colour(role))
    entries = [(role, _colour(role), "line") for role in drawn]
    x_legend = plot.left + plot.width - 110 if diagonal else plot.left + 12
    plot.canvas.legend(x_legend, plot.bottom - 15 * len(entries) - 4, entries)
    return plot.canvas.svg()


def confusion(matrices: dict[str, pd.DataFrame], title: str) -> bytes:
    """Confusion matrices side by side, counts in the cells (rows actual, columns predicted)."""
    if not matrices:
        return svg.placeholder(title, "no scored rows")
    cell, gap = 90.0, 70.0
    canvas = svg.Canvas(gap + len(matrices) * (2 * cell + gap), 2 * cell + 110, title)
    for k, (name, matrix) in enumerate(matrices.items()):
        values = matrix.to_numpy()
        top, most = 56.0, max(int(values.max()), 1)
        n = len(matrix.columns)
        size = 2 * cell / max(n, 1)
        left = gap + k * (2 * cell + gap)
        plot = svg.Plot(
            canvas, left=left, top=top, width=size * n, height=size * n, x_range=(0, n), y_range=(n, 0)
        )
        canvas.text(left + size * n / 2, top - 8, name, size=11)
        for (i, j), count in np.ndenumerate(values):
            x, y = left + j * size, top + i * size
            canvas.add(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{size:.1f}" height="{size:.1f}" '
                f'fill="{svg.colour_at(svg.BLUES, count / most)}"/>'
            )
            colour = "white" if count > values.max() / 2 else "black"
            canvas.text(x + size / 2, y + size / 2 + 4, f"{int(count):,}", extra=f'fill="{colour}"')
        plot.x_labels([str(c)[:12] for c in matrix.columns], [j + 0.5 for j in range(n)], slant=False)
        for i, label in enumerate(str(r)[:12] for r in matrix.index):
            y = top + (i + 0.5) * size
            canvas.text(left - 8, y, label, angle=-90)
        canvas.text(left + size * n / 2, plot.bottom + 32, "predicted")
        middle = top + size * n / 2
        canvas.text(left - 26, middle, "actual", angle=-90)
    return canvas.svg()


def _feature_margin(names: list[str]) -> float:
    return 16 + max((svg.text_width(name) for name in names), default=40)


def drift_bars(drift: pd.DataFrame) -> bytes:
    """PSI per feature as bars, drifted features in red, each feature's threshold a short
    vertical line across its own bar."""
    title = "Drift per feature: newest batch against the champion's reference (red: drifted)"
    if drift.empty:
        return svg.placeholder(title, "no drift statistics: no champion to compare with", width=560)
    features = drift["feature"].astype(str).tolist()
    left = _feature_margin(features)
    row = 22.0
    top = 34.0
    height = row * len(features)
    ticks = svg.nice_ticks(0.0, max(float(drift["psi"].max()), float(drift["psi_threshold"].max())) * 1.05)
    canvas = svg.Canvas(max(560.0, left + 420), top + height + 50, title)
    plot = svg.Plot(
        canvas, left=left, top=top, width=canvas.width - left - 20, height=height,
        x_range=(ticks[0], ticks[-1]), y_range=(len(features) - 0.5, -0.5),
    )  # fmt: skip
    plot.x_ticks(ticks, "population stability index (PSI); black line: the feature's threshold")
    for i, (psi, threshold, drifted) in enumerate(
        drift[["psi", "psi_threshold", "drifted"]].itertuples(index=False)
    ):
        plot.hbar(i, float(psi), 0.7, CURRENT_COLOUR if drifted else "#1f77b4")
        plot.vline(float(threshold), i - 0.45, i + 0.45, "black", width=1.2)
    plot.y_labels(features, list(range(len(features)))).frame()
    return canvas.svg()


def distribution(feature: dict[str, Any], name: str, reference: str) -> bytes:
    """Shares of the reference and of the newest batch, side by side: per quantile bin of the
    reference for a number, per category for a category (a category the reference lacks
    stands alone)."""
    dist = feature["distribution"]
    ref = np.asarray(dist["reference"], dtype=float)
    cur = np.asarray(dist["current"], dtype=float)
    if "edges" in dist:
        edges = [short_number(e) for e in dist["edges"]]
        labels = (
            [f"≤ {edges[0]}", *(f"{a}–{b}" for a, b in zip(edges, edges[1:], strict=False)), f"> {edges[-1]}"]
            if edges
            else ["all"]
        )
        labels.append("missing")
        if ref[-1] == 0 and cur[-1] == 0:
            labels, ref, cur = labels[:-1], ref[:-1], cur[:-1]
    else:
        labels = [str(c) if len(str(c)) <= 22 else str(c)[:21] + "…" for c in dist["categories"]]
    ref_share = ref / max(ref.sum(), 1)
    cur_share = cur / max(cur.sum(), 1)
    state = "drifted" if feature.get("drifted") else "quiet"
    return svg.bar_pairs(
        labels,
        [
            (reference, REFERENCE_COLOUR, ref_share.tolist()),
            ("newest batch", CURRENT_COLOUR, cur_share.tolist()),
        ],
        title=f"{name}: PSI {feature['psi']:.3f} ({state})",
        y_label="share of rows",
    )


def drift_over_time(frame: pd.DataFrame, title: str, threshold: float) -> bytes:
    """PSI per feature (rows) and period (columns), the largest drifts on top; a dot marks a
    drift that counted, and triangles above mark the periods where a model was retrained
    (hollow) or promoted (filled). `frame`: period, feature, psi, drifted, retrained, promoted."""
    if frame.empty:
        return svg.placeholder(title, "no period evaluated against a champion yet")
    grid = frame.pivot_table(index="feature", columns="period", values="psi", aggfunc="max")
    order = grid.max(axis=1).sort_values(ascending=False, kind="stable").index
    grid = grid.loc[order]
    counted = frame.pivot_table(index="feature", columns="period", values="drifted", aggfunc="max")
    drifted = counted.reindex(index=grid.index, columns=grid.columns).fillna(0).to_numpy() > 0
    events = frame.groupby("period")[["retrained", "promoted"]].max().reindex(grid.columns).fillna(0)
    periods, features = [str(p) for p in grid.columns], [str(f) for f in grid.index]
    left, top = _feature_margin(features), 62.0
    cell_w, cell_h = min(30.0, max(4.0, (svg.WIDEST - left - 110) / len(periods))), 20.0
    width, height = cell_w * len(periods), cell_h * len(features)
    canvas = svg.Canvas(
        max(420.0, left + width + 110),
        top + height + 70,
        f"{title}\n▽ retrained, ▼ promoted, ● drift counted",
    )
    plot = svg.Plot(
        canvas, left=left, top=top, width=width, height=height,
        x_range=(-0.5, len(periods) - 0.5), y_range=(len(features) - 0.5, -0.5),
    )  # fmt: skip
    values = grid.to_numpy(dtype=float)
    for (i, j), psi in np.ndenumerate(values):
        colour = "#f4f4f4" if math.isnan(psi) else svg.colour_at(svg.YELLOW_ORANGE_RED, psi / (2 * threshold))
        canvas.add(
            f'<rect x="{left + j * cell_w:.1f}" y="{top + i * cell_h:.1f}" width="{cell_w:.1f}" '
            f'height="{cell_h:.1f}" fill="{colour}"/>'
        )
        if drifted[i, j]:
            canvas.add(svg.marker(plot.x(j), plot.y(i), "dot", "black", 2.4, outline="white"))
    for j, (retrained, promoted) in enumerate(events.to_numpy()):
        if retrained or promoted:
            canvas.add(svg.marker(plot.x(j), top - 9, "filled" if promoted else "hollow", "black", 5))
    plot.y_labels(features, list(range(len(features))))
    plot.x_labels(periods, list(range(len(periods))), slant=True)
    _colour_bar(canvas, left + width + 18, top, max(height, 80.0), threshold)
    return canvas.svg()


def _colour_bar(canvas: svg.Canvas, x: float, top: float, height: float, threshold: float) -> None:
    """The PSI colour scale from 0 to twice the threshold (and beyond, the darkest colour)."""
    steps = 24
    for k in range(steps):
        share = 1 - (k + 0.5) / steps
        y, colour = top + k * height / steps, svg.colour_at(svg.YELLOW_ORANGE_RED, share)
        canvas.add(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="12" height="{height / steps + 0.5:.1f}" fill="{colour}"/>'
        )
    ticks = [0.0, threshold, 2 * threshold]
    for tick in ticks:
        y = top + height * (1 - tick / (2 * threshold))
        label = svg.tick_label(tick, ticks) + ("+" if tick == ticks[-1] else "")
        canvas.text(x + 16, y + 4, label, size=10, anchor="start")
    middle = top + height / 2
    canvas.text(x + 62, middle, f"PSI (threshold {threshold:g})", size=10, angle=-90)


def _periods_plot(
    canvas: svg.Canvas, periods: list[str], values: list[float], *, right: float, top: float, y_label: str
) -> svg.Plot:
    """A plot of values per period, the periods under the x axis, its y axis ticked and named."""
    ticks = svg.nice_ticks(min(values), max(values), most=5) if values else [0.0, 1.0]
    left = 62.0
    plot = svg.Plot(
        canvas, left=left, top=top, width=canvas.width - left - right, height=canvas.height - top - 62,
        x_range=(-0.6, len(periods) - 0.4), y_range=(ticks[0], ticks[-1]),
    )  # fmt: skip
    return plot.x_labels(periods, list(range(len(periods))), slant=True).y_ticks(ticks, y_label)


def _finite(values: pd.Series) -> list[float]:
    return [float(v) for v in values if math.isfinite(float(v))]


def production_history(points: pd.DataFrame, metric: str) -> bytes:
    """The champion's realised metric per labelled period and its estimated metric per period
    (from its own probabilities, where labels have not arrived), a vertical line where a new
    version took over. `points`: period, version, realised, estimated."""
    title = f"In production: {metric} the champion served, period by period"
    if points.empty:
        return svg.placeholder(
            title, "no period served by a champion yet: the history starts with the next batch", width=640
        )
    realised = pd.to_numeric(points["realised"], errors="coerce").astype(float)
    estimated = pd.to_numeric(points["estimated"], errors="coerce").astype(float)
    canvas = svg.Canvas(min(svg.WIDEST, max(640.0, 70 + 34 * len(points))), 320, title)
    periods = points["period"].astype(str).tolist()
    values = _finite(realised) + _finite(estimated)
    plot = _periods_plot(canvas, periods, values, right=20, top=44, y_label=metric)
    x = list(range(len(points)))
    versions = points["version"].astype(str).tolist()
    for i, version in enumerate(versions):
        if i == 0 or version != versions[i - 1]:
            plot.vline(i - 0.5, *plot.y_range, "#999", width=0.8, dotted=True)
            canvas.text(plot.x(i - 0.45), plot.top + 10, version, size=9, anchor="start")
    plot.line(x, realised.tolist(), "#1f77b4", marker_kind="dot", marker_size=3)
    entries = [(f"realised {metric}", "#1f77b4", "line")]
    if estimated.notna().any():
        plot.line(x, estimated.tolist(), "#ff7f0e", dashed=True, marker_kind="square", marker_size=2.5)
        entries.append((f"estimated {metric}", "#ff7f0e", "dashed"))
    canvas.legend(plot.left + 10, plot.bottom - 15 * len(entries) - 2, entries)
    plot.frame()
    return canvas.svg()


def calibration(scores: dict[str, pd.DataFrame | None], positive: str, bins: int = 10) -> bytes:
    """Reliability: the share of positives against the mean predicted probability, per tenth of
    the probability range, for each model on the holdout."""
    title = "Calibration on the holdout"
    drawn = {role: frame for role, frame in scores.items() if frame is not None and not frame.empty}
    if not drawn:
        return svg.placeholder(title, "no model was scored on the holdout")
    plot = _unit_square(title, "mean predicted probability", f"share that was {positive}")
    plot.line([0, 1], [0, 1], "#bbb", width=0.8, dashed=True)
    for role, frame in drawn.items():
        proba = pd.to_numeric(frame["probability"], errors="coerce").to_numpy()
        actual = (frame["actual"].astype(str) == positive).to_numpy().astype(float)
        which = np.minimum((proba * bins).astype(int), bins - 1)
        used = np.unique(which)
        plot.line(
            [float(proba[which == b].mean()) for b in used],
            [float(actual[which == b].mean()) for b in used],
            _colour(role),
            marker_kind="dot",
        )
    entries = [(role, _colour(role), "line") for role in drawn]
    plot.canvas.legend(plot.left + 12, plot.top + 10, [*entries, ("perfectly calibrated", "#bbb", "dashed")])
    return plot.canvas.svg()


def importance(values: dict[str, dict[str, float]], metric: str, most: int = 12) -> bytes:
    """Permutation importance per feature for each model that has it, the `most` largest."""
    title = "Feature importance (permutation, on each model's holdout)"
    shown = {role: v for role, v in values.items() if v}
    features: list[str] = []
    for v in shown.values():
        features += [f for f in sorted(v, key=lambda f: -v[f])[:most] if f not in features]
    features = sorted(features, key=lambda f: -max(v.get(f, 0.0) for v in shown.values()))[:most]
    if not features:
        return svg.placeholder(
            title, "no importance recorded: models trained before it was stored have none", width=520
        )
    numbers = [v.get(f, 0.0) for v in shown.values() for f in features]
    ticks = svg.nice_ticks(min(0.0, *numbers), max(0.0, *numbers), most=5)
    left, top, row = _feature_margin(features), 34.0, 24.0
    canvas = svg.Canvas(max(520.0, left + 360), top + row * len(features) + 56, title)
    plot = svg.Plot(
        canvas, left=left, top=top, width=canvas.width - left - 20, height=row * len(features),
        x_range=(ticks[0], ticks[-1]), y_range=(len(features) - 0.5, -0.5),
    )  # fmt: skip
    plot.x_ticks(ticks, f"fall in holdout {metric} when the feature is shuffled")
    thickness = 0.8 / len(shown)
    for k, (role, v) in enumerate(shown.items()):
        for i, feature in enumerate(features):
            plot.hbar(
                i - 0.4 + thickness * (k + 0.5),
                v.get(feature, 0.0),
                thickness,
                _colour(role),
            )
    plot.vline(0.0, len(features) - 0.5, -0.5, "#999", width=0.6)
    plot.y_labels(features, list(range(len(features))))
    entries = [(role, _colour(role), "box") for role in shown]
    canvas.legend(plot.left + plot.width - 100, plot.bottom - 15 * len(entries) - 2, entries)
    return canvas.svg()


def served_history(table: pd.DataFrame, metric: str) -> bytes:
    """The served metric per batch for every policy; the policy's retrains (hollow) and
    promotions (filled) marked above the lines."""
    title = f"Backtest: served {metric} per batch, the policy against baselines"
    if table.empty:
        return svg.placeholder(title, "no backtest yet", width=740)
    lines = {
        name: pd.to_numeric(table[name], errors="coerce").astype(float)
        for name in POLICY_COLOURS
        if name in table
    }
    retrained_label, promoted_label = "policy retrained, kept the champion", "policy promoted"
    labels = [name.replace("_", " ") for name in lines] + [retrained_label, promoted_label]
    right = 14 + 23 + max(svg.text_width(label, 10) for label in labels) + 8
    canvas = svg.Canvas(min(svg.WIDEST, max(740.0, 300 + 30 * len(table))), 360, title)
    periods = table["period"].astype(str).tolist()
    served = [v for s in lines.values() for v in _finite(s)]
    plot = _periods_plot(canvas, periods, served, right=right, top=58, y_label=f"served {metric}")
    x = list(range(len(table)))
    entries = []
    for name, values in lines.items():
        colour = POLICY_COLOURS[name]
        policy = name == "policy"
        plot.line(x, values.tolist(), colour, width=2 if policy else 1.1, marker_kind="dot" if policy else "")
        entries.append((name.replace("_", " "), colour, "line"))
    if "policy_retrained" in table:
        retrained = table["policy_retrained"].astype(int).to_numpy() == 1
        promoted = table["policy_promoted"].astype(int).to_numpy() == 1
        for mask, kind, label in (
            (retrained & ~promoted, "hollow", retrained_label),
            (promoted, "filled", promoted_label),
        ):
            if mask.any():
                for i in np.flatnonzero(mask):
                    canvas.add(svg.marker(plot.x(float(i)), plot.top - 7, kind, "black", 5))
                entries.append((label, "black", kind))
    canvas.legend(plot.left + plot.width + 14, plot.top + 4, entries)
    plot.frame()
    return canvas.svg()

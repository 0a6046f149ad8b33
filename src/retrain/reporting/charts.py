"""The report's charts: matplotlib figures rendered to standalone SVG bytes, same data same bytes."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from retrain.reporting import svg  # noqa: E402

ROLE_COLOURS = {"champion": "#1f77b4", "challenger": "#d62728"}
POLICY_COLOURS = {
    "policy": "#d62728",
    "never": "#7f7f7f",
    "every_batch": "#2ca02c",
    "best_schedule": "#9467bd",
}
STYLE = {
    "svg.hashsalt": "retrain",
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _svg(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


REFERENCE_COLOUR, CURRENT_COLOUR = "#9fb7cf", "#d62728"
AXIS_NAMES = {
    "fpr": "false positive rate",
    "tpr": "true positive rate (recall)",
    "recall": "recall",
    "precision": "precision",
}


def _style() -> Any:
    return plt.rc_context(STYLE)  # type: ignore[arg-type]  # matplotlib stubs: rc_context keys


def short_number(value: float) -> str:
    """A bin edge as a person reads it: 3 significant digits, no exponent below a million."""
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        text = f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return text.replace("e+0", "e").replace("e+", "e")
    return f"{value:.2g}"


def curves(points: dict[str, pd.DataFrame | None], x: str, y: str, title: str, diagonal: bool) -> bytes:
    """One line per model (champion, challenger) of `y` against `x`."""
    with _style():
        fig, ax = plt.subplots(figsize=(4.2, 3.8))
        drawn = 0
        for role, frame in points.items():
            if frame is None or frame.empty:
                continue
            ax.plot(frame[x], frame[y], color=ROLE_COLOURS.get(role), label=role, lw=1.6)
            drawn += 1
        if drawn:
            if diagonal:
                ax.plot([0, 1], [0, 1], color="#bbb", lw=0.8, ls="--")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel(AXIS_NAMES.get(x, x))
            ax.set_ylabel(AXIS_NAMES.get(y, y))
            ax.legend(loc="lower right" if diagonal else "lower left", frameon=False)
        else:
            _empty(ax, "no model was scored on the holdout")
        ax.set_title(title)
        return _svg(fig)


def confusion(matrices: dict[str, pd.DataFrame], title: str) -> bytes:
    """Confusion matrices side by side, counts in the cells (rows actual, columns predicted)."""
    with _style():
        n = max(len(matrices), 1)
        fig, axes = plt.subplots(1, n, figsize=(3.3 * n, 3.3), squeeze=False)
        axes = axes[0]
        if not matrices:
            _empty(axes[0], "no scored rows")
        for ax, (name, matrix) in zip(axes, matrices.items(), strict=False):
            values = matrix.to_numpy()
            ax.imshow(values, cmap="Blues", vmin=0, vmax=max(int(values.max()), 1))
            labels = [str(c)[:12] for c in matrix.columns]
            ax.set_xticks(range(len(labels)), labels)
            ax.set_yticks(range(len(labels)), [str(i)[:12] for i in matrix.index], rotation=90, va="center")
            ax.set_xlabel("predicted")
            ax.set_ylabel("actual")
            ax.set_title(name, fontsize=9)
            for (i, j), count in np.ndenumerate(values):
                ax.text(
                    j,
                    i,
                    f"{int(count):,}",
                    ha="center",
                    va="center",
                    color="white" if count > values.max() / 2 else "black",
                )
        fig.suptitle(title)
        fig.tight_layout()
        return _svg(fig)


def drift_bars(drift: pd.DataFrame) -> bytes:
    """PSI per feature as bars, drifted features in red, each feature's threshold a short
    vertical line across its own bar."""
    with _style():
        height = max(2.0, 0.24 * len(drift) + 1.2)
        fig, ax = plt.subplots(figsize=(6.2, height))
        if drift.empty:
            _empty(ax, "no drift statistics: no champion to compare with")
        else:
            frame = drift.iloc[::-1]
            y = np.arange(len(frame))
            colours = [CURRENT_COLOUR if d else "#1f77b4" for d in frame["drifted"]]
            ax.barh(y, frame["psi"], color=colours, height=0.7)
            ax.vlines(frame["psi_threshold"], y - 0.45, y + 0.45, color="black", lw=1.2)
            ax.set_yticks(y, frame["feature"])
            ax.set_xlabel("population stability index (PSI); black line: the feature's threshold")
            ax.set_ylim(-0.6, len(frame) - 0.4)
        ax.set_title("Drift per feature: newest batch against the champion's reference (red: drifted)")
        return _svg(fig)


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
    with _style():
        if frame.empty:
            fig, ax = plt.subplots(figsize=(6, 1.6))
            _empty(ax, "no period evaluated against a champion yet")
            ax.set_title(title)
            return _svg(fig)
        grid = frame.pivot_table(index="feature", columns="period", values="psi", aggfunc="max")
        order = grid.max(axis=1).sort_values(ascending=False, kind="stable").index
        grid = grid.loc[order]
        drifted = frame.pivot_table(index="feature", columns="period", values="drifted", aggfunc="max")
        drifted = drifted.reindex(index=grid.index, columns=grid.columns).fillna(0)
        periods = [str(p) for p in grid.columns]
        fig, ax = plt.subplots(figsize=(max(5.0, 0.42 * len(periods) + 2.6), 0.26 * len(grid) + 1.6))
        image = ax.imshow(grid.to_numpy(), aspect="auto", cmap="YlOrRd", vmin=0, vmax=2 * threshold)
        rows, cols = np.nonzero(drifted.to_numpy() > 0)
        ax.scatter(cols, rows, s=10, color="black", label="drift counted")
        ax.set_yticks(range(len(grid)), list(grid.index))
        ax.set_xticks(range(len(periods)), periods, rotation=45, ha="right")
        events = frame.groupby("period")[["retrained", "promoted"]].max().reindex(grid.columns).fillna(0)
        for column, (retrained, promoted) in enumerate(events.to_numpy()):
            if retrained or promoted:
                ax.scatter(
                    column,
                    -0.9,
                    marker="v",
                    s=36,
                    clip_on=False,
                    facecolor="black" if promoted else "white",
                    edgecolor="black",
                )
        ax.set_ylim(len(grid) - 0.5, -1.4)
        ax.spines["left"].set_visible(False)
        colourbar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, extend="max")
        colourbar.set_label(f"PSI (threshold {threshold:g})")
        ax.set_title(title + "\n▽ retrained, ▼ promoted, ● drift counted", fontsize=9)
        return _svg(fig)


def production_history(points: pd.DataFrame, metric: str) -> bytes:
    """The champion's realised metric per labelled period and its estimated metric per period
    (from its own probabilities, where labels have not arrived), a vertical line where a new
    version took over. `points`: period, version, realised, estimated."""
    with _style():
        fig, ax = plt.subplots(figsize=(6.4, 3.0))
        if points.empty:
            _empty(ax, "no period served by a champion yet: the history starts with the next batch")
        else:
            x = np.arange(len(points))
            realised = pd.to_numeric(points["realised"], errors="coerce")
            estimated = pd.to_numeric(points["estimated"], errors="coerce")
            ax.plot(x, realised, marker="o", ms=4, color="#1f77b4", label=f"realised {metric}")
            if estimated.notna().any():
                ax.plot(x, estimated, marker="s", ms=3, ls="--", color="#ff7f0e", label=f"estimated {metric}")
            versions = points["version"].astype(str).tolist()
            for i in range(len(versions)):
                if i == 0 or versions[i] != versions[i - 1]:
                    ax.axvline(i - 0.5, color="#999", lw=0.8, ls=":")
                    ax.annotate(
                        versions[i], (i - 0.45, 1), xycoords=("data", "axes fraction"), va="top", fontsize=8
                    )
            ax.set_xticks(x, points["period"].astype(str), rotation=45, ha="right")
            ax.set_xlim(-0.6, len(points) - 0.4)
            ax.set_ylabel(metric)
            ax.legend(loc="lower left", frameon=False, fontsize=8)
        ax.set_title(f"In production: {metric} the champion served, period by period")
        return _svg(fig)


def calibration(scores: dict[str, pd.DataFrame | None], positive: str, bins: int = 10) -> bytes:
    """Reliability: the share of positives against the mean predicted probability, per tenth of
    the probability range, for each model on the holdout."""
    with _style():
        fig, ax = plt.subplots(figsize=(4.2, 3.8))
        drawn = 0
        for role, frame in scores.items():
            if frame is None or frame.empty:
                continue
            proba = pd.to_numeric(frame["probability"], errors="coerce").to_numpy()
            actual = (frame["actual"].astype(str) == positive).to_numpy().astype(float)
            which = np.minimum((proba * bins).astype(int), bins - 1)
            used = np.unique(which)
            mean_p = [proba[which == b].mean() for b in used]
            rate = [actual[which == b].mean() for b in used]
            ax.plot(mean_p, rate, marker="o", ms=3, color=ROLE_COLOURS.get(role), label=role)
            drawn += 1
        if drawn:
            ax.plot([0, 1], [0, 1], color="#bbb", lw=0.8, ls="--", label="perfectly calibrated")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("mean predicted probability")
            ax.set_ylabel(f"share that was {positive}")
            ax.legend(loc="upper left", frameon=False, fontsize=8)
        else:
            _empty(ax, "no model was scored on the holdout")
        ax.set_title("Calibration on the holdout")
        return _svg(fig)


def importance(values: dict[str, dict[str, float]], metric: str, most: int = 12) -> bytes:
    """Permutation importance per feature for each model that has it, the `most` largest."""
    with _style():
        shown = {role: v for role, v in values.items() if v}
        features: list[str] = []
        for v in shown.values():
            features += [f for f in sorted(v, key=lambda f: -v[f])[:most] if f not in features]
        features = (
            sorted(features, key=lambda f: max(v.get(f, 0.0) for v in shown.values()))[-most:]
            if shown
            else []
        )
        fig, ax = plt.subplots(figsize=(5.2, max(2.0, 0.26 * len(features) + 1.0)))
        if not features:
            _empty(ax, "no importance recorded: models trained before it was stored have none")
        else:
            y = np.arange(len(features))
            width = 0.8 / len(shown)
            for k, (role, v) in enumerate(shown.items()):
                ax.barh(
                    y + k * width - 0.4 + width / 2,
                    [v.get(f, 0.0) for f in features],
                    height=width,
                    color=ROLE_COLOURS.get(role),
                    label=role,
                )
            ax.set_yticks(y, features)
            ax.axvline(0, color="#999", lw=0.6)
            ax.set_xlabel(f"fall in holdout {metric} when the feature is shuffled")
            ax.legend(loc="lower right", frameon=False, fontsize=8)
        ax.set_title("Feature importance (permutation, on each model's holdout)")
        return _svg(fig)


def served_history(table: pd.DataFrame, metric: str) -> bytes:
    """The served metric per batch for every policy; the policy's retrains (hollow) and
    promotions (filled) marked above the lines."""
    with _style():
        fig, ax = plt.subplots(figsize=(7.4, 3.4))
        if table.empty:
            _empty(ax, "no backtest yet")
        else:
            x = np.arange(len(table))
            for name, colour in POLICY_COLOURS.items():
                if name in table:
                    values = pd.to_numeric(table[name], errors="coerce")
                    ax.plot(
                        x,
                        values,
                        color=colour,
                        label=name.replace("_", " "),
                        lw=2 if name == "policy" else 1.1,
                        marker="o" if name == "policy" else None,
                        ms=3,
                    )
            if "policy_retrained" in table:
                retrained = table["policy_retrained"].astype(int).to_numpy() == 1
                promoted = table["policy_promoted"].astype(int).to_numpy() == 1
                for mask, face, label in (
                    (retrained & ~promoted, "white", "policy retrained, kept the champion"),
                    (promoted, "black", "policy promoted"),
                ):
                    if mask.any():
                        ax.scatter(
                            x[mask],
                            np.full(mask.sum(), 1.02),
                            transform=ax.get_xaxis_transform(),
                            marker="v",
                            s=40,
                            facecolor=face,
                            edgecolor="black",
                            clip_on=False,
                            label=label,
                        )
            ax.set_xticks(x, table["period"].astype(str), rotation=45, ha="right")
            ax.set_ylabel(f"served {metric}")
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
        ax.set_title(f"Backtest: served {metric} per batch, the policy against baselines", pad=14)
        return _svg(fig)

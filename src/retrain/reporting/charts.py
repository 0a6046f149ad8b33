"""The report's charts: matplotlib figures rendered to standalone SVG bytes, same data same bytes."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

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


def curves(points: dict[str, pd.DataFrame | None], x: str, y: str, title: str, diagonal: bool) -> bytes:
    """One line per model (champion, challenger) of `y` against `x`."""
    with plt.rc_context(STYLE):  # type: ignore[arg-type]  # matplotlib stubs: rc_context keys
        fig, ax = plt.subplots(figsize=(4.6, 4))
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
            ax.set_xlabel(x)
            ax.set_ylabel(y)
            ax.legend(loc="lower right" if diagonal else "lower left", frameon=False)
        else:
            _empty(ax, "no model was scored on the holdout")
        ax.set_title(title)
        return _svg(fig)


def confusion(matrices: dict[str, pd.DataFrame], title: str) -> bytes:
    """Confusion matrices side by side, counts in the cells (rows actual, columns predicted)."""
    with plt.rc_context(STYLE):  # type: ignore[arg-type]  # matplotlib stubs: rc_context keys
        fig, axes = plt.subplots(1, max(len(matrices), 1), figsize=(3.2 * max(len(matrices), 1), 3))
        axes = np.atleast_1d(axes)
        if not matrices:
            _empty(axes[0], "no scored rows")
        for ax, (name, matrix) in zip(axes, matrices.items(), strict=False):
            values = matrix.to_numpy()
            ax.imshow(values, cmap="Blues", vmin=0, vmax=max(int(values.max()), 1))
            labels = [str(c) for c in matrix.columns]
            ax.set_xticks(range(len(labels)), labels)
            ax.set_yticks(range(len(labels)), [str(i) for i in matrix.index])
            ax.set_xlabel("predicted")
            ax.set_ylabel("actual")
            ax.set_title(name)
            for (i, j), count in np.ndenumerate(values):
                ax.text(
                    j,
                    i,
                    str(int(count)),
                    ha="center",
                    va="center",
                    color="white" if count > values.max() / 2 else "black",
                )
        fig.suptitle(title, y=1.04)
        return _svg(fig)


def drift_bars(drift: pd.DataFrame) -> bytes:
    """PSI per feature as bars, each feature's threshold as a tick; drifted features in red."""
    with plt.rc_context(STYLE):  # type: ignore[arg-type]  # matplotlib stubs: rc_context keys
        height = max(2.0, 0.24 * len(drift) + 1)
        fig, ax = plt.subplots(figsize=(6.5, height))
        if drift.empty:
            _empty(ax, "no drift statistics: no champion to compare with")
        else:
            frame = drift.iloc[::-1]
            y = np.arange(len(frame))
            colours = ["#d62728" if d else "#1f77b4" for d in frame["drifted"]]
            ax.barh(y, frame["psi"], color=colours, height=0.7)
            ax.scatter(
                frame["psi_threshold"], y, marker="|", s=180, color="black", label="PSI threshold", zorder=3
            )
            ax.set_yticks(y, frame["feature"])
            ax.set_xlabel("population stability index (PSI)")
            ax.legend(loc="lower right", frameon=False)
        ax.set_title("Drift per feature: newest batch against the champion's reference")
        return _svg(fig)


def served_history(table: pd.DataFrame, metric: str) -> bytes:
    """The served metric per batch for every policy, the policy's retrains marked."""
    with plt.rc_context(STYLE):  # type: ignore[arg-type]  # matplotlib stubs: rc_context keys
        fig, ax = plt.subplots(figsize=(8, 3.4))
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
                        label=name,
                        lw=2 if name == "policy" else 1.1,
                        marker="o" if name == "policy" else None,
                        ms=3,
                    )
            if "policy_retrained" in table:
                marks = table["policy_retrained"].astype(int).to_numpy() == 1
                top = pd.to_numeric(table["policy"], errors="coerce").fillna(
                    pd.to_numeric(table["policy"], errors="coerce").max()
                )
                ax.scatter(
                    x[marks], top[marks], marker="v", s=60, color="black", zorder=4, label="policy retrained"
                )
            ax.set_xticks(x, table["period"].astype(str), rotation=45, ha="right")
            ax.set_ylabel(f"served {metric}")
            ax.legend(loc="lower left", frameon=False, ncol=3)
        ax.set_title(f"Served {metric} per batch: policy against baselines")
        return _svg(fig)

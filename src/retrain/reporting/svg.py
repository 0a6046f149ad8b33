"""Small charts written as SVG text directly: the report draws one per feature, and matplotlib
takes about 0.15 s a figure where this takes a millisecond. Same data, same bytes."""

from __future__ import annotations

import math
from html import escape

FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'
CHAR_WIDTH = 6.2  # px per character at 11 px, to leave room for labels


def _text(x: float, y: float, text: str, size: int = 11, anchor: str = "middle", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {extra}>'
        f"{escape(text)}</text>"
    )


def percent_ticks(top: float) -> list[float]:
    """Round steps from 0 to at least `top` (a share), at most six ticks."""
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5):
        if top / step <= 5:
            return [step * k for k in range(math.ceil(top / step - 1e-9) + 1)]
    return [0.0, 0.25, 0.5, 0.75, 1.0]


def bar_pairs(
    labels: list[str],
    series: list[tuple[str, str, list[float]]],
    title: str,
    y_label: str,
) -> bytes:
    """Bars side by side per label, one per series (name, colour, shares in 0..1), with a
    percentage axis, the labels slanted when they do not fit side by side, and a legend."""
    n, k = max(len(labels), 1), len(series)
    left, top = 52.0, 40.0
    legend = sum(26 + len(name) * 5.8 for name, _, _ in series)
    width = max(300.0, left + n * 30 + 16, left + legend)
    slot = (width - left - 16) / n
    longest = max((len(label) for label in labels), default=1)
    slant = longest * CHAR_WIDTH > slot - 4
    bottom = 18 + (0.68 * longest * CHAR_WIDTH if slant else 4)
    plot_height = 130.0
    height = top + plot_height + bottom
    ticks = percent_ticks(max([max(s[2], default=0.0) for s in series] + [0.01]))
    scale = plot_height / ticks[-1]
    base = top + plot_height
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" {FONT}>',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
        _text(width / 2, 16, title, size=12),
    ]
    for tick in ticks:
        y = base - tick * scale
        parts.append(f'<line x1="{left}" x2="{width - 8:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e6e6"/>')
        parts.append(_text(left - 5, y + 4, f"{tick:.0%}", anchor="end"))
    parts.append(
        _text(
            14,
            top + plot_height / 2,
            y_label,
            extra=f'transform="rotate(-90 14 {top + plot_height / 2:.1f})"',
        )
    )
    bar = slot * 0.8 / k
    for i, label in enumerate(labels):
        centre = left + slot * (i + 0.5)
        for j, (_, colour, shares) in enumerate(series):
            value = shares[i] * scale
            x = centre - slot * 0.4 + j * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{base - value:.1f}" width="{bar:.1f}" '
                f'height="{value:.1f}" fill="{colour}"/>'
            )
        if slant:
            parts.append(
                _text(
                    centre + 3,
                    base + 12,
                    label,
                    anchor="end",
                    extra=f'transform="rotate(-40 {centre + 3:.1f} {base + 12:.1f})"',
                )
            )
        else:
            parts.append(_text(centre, base + 14, label))
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{base}" stroke="#333"/>')
    parts.append(f'<line x1="{left}" x2="{width - 8:.1f}" y1="{base}" y2="{base}" stroke="#333"/>')
    x = left
    for name, colour, _ in series:
        parts.append(f'<rect x="{x:.1f}" y="24" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, 33, name, size=10, anchor="start"))
        x += 14 + len(name) * 5.8 + 12
    parts.append("</svg>")
    return "\n".join(parts).encode()

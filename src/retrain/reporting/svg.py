"""Charts written as SVG text directly: a plot area with linear scales, axes, lines, markers,
bars, heat-map cells and legends. Same data, same bytes; a report draws a dozen of them in a few
milliseconds, where matplotlib took about 1.5 s (importing it and laying out its text)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'
CHAR_WIDTH = 6.2  # px per character at 11 px, to leave room for labels
WIDEST = 1100.0  # widest canvas of a chart over periods: wider, the page would shrink its text
SLANTED_GAP = 18.0  # least distance between slanted labels under an axis, so that they do not touch
AXIS, GRID, MUTED = "#333", "#e6e6e6", "#555"
BLUES = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"]
YELLOW_ORANGE_RED = [
    "#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026", "#800026",
]  # fmt: skip


def _text(
    x: float, y: float, text: str, size: int = 11, anchor: str = "middle", extra: str = "", angle: float = 0
) -> str:
    """A label at (x, y), turned by `angle` degrees about that point."""
    if angle:
        extra = f'transform="rotate({angle:g} {x:.1f} {y:.1f})"' + (f" {extra}" if extra else "")
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {extra}>'
        f"{escape(text)}</text>"
    )


def text_width(text: str, size: int = 11) -> float:
    return len(text) * CHAR_WIDTH * size / 11


def colour_at(scale: Sequence[str], share: float) -> str:
    """The colour a share in 0..1 takes on a scale of evenly spaced colours."""
    position = min(max(share, 0.0), 1.0) * (len(scale) - 1)
    i = min(int(position), len(scale) - 2)
    weight = position - i
    low, high = (tuple(int(c[k : k + 2], 16) for k in (1, 3, 5)) for c in (scale[i], scale[i + 1]))
    return "#" + "".join(f"{round(a + (b - a) * weight):02x}" for a, b in zip(low, high, strict=True))


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round steps (1, 2, 2.5 or 5 times a power of ten) that cover low..high, at most `most`."""
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = 0.0, 1.0
    elif high <= low:  # one value: a range around it
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    magnitude = 10 ** math.floor(math.log10((high - low) / (most - 1)))
    for multiple in (1, 2, 2.5, 5, 10, 20):
        step = multiple * magnitude
        first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
        if last - first + 1 <= most:
            break
    return [round(k * step, 12) for k in range(first, last + 1)]


def tick_label(value: float, ticks: Sequence[float]) -> str:
    """A tick as a person reads it: as many decimals as the step needs, never an exponent."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = 0
    while decimals < 8 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    return f"{value:,.{decimals}f}".replace("-", "−")


def placeholder(title: str, message: str, width: float = 420, height: float = 150) -> bytes:
    """A chart with nothing to draw: its title and why."""
    return Canvas(width, height, title).note(width / 2, height / 2 + 10, message).svg()


@dataclass
class Canvas:
    """An SVG picture built part by part; `title` may hold several lines."""

    width: float
    height: float
    title: str = ""
    parts: list[str] = field(default_factory=list)

    def add(self, *parts: str) -> Canvas:
        self.parts.extend(parts)
        return self

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: int = 11,
        anchor: str = "middle",
        extra: str = "",
        angle: float = 0,
    ) -> Canvas:
        return self.add(_text(x, y, text, size=size, anchor=anchor, extra=extra, angle=angle))

    def note(self, x: float, y: float, text: str) -> Canvas:
        return self.text(x, y, text, extra=f'fill="{MUTED}"')

    def legend(self, x: float, y: float, entries: Sequence[tuple[str, str, str]]) -> Canvas:
        """Entries (label, colour, kind: line, dashed, box, dot, hollow or filled triangle),
        one per row from (x, y)."""
        for k, (label, colour, kind) in enumerate(entries):
            row = y + 15 * k
            if kind in ("line", "dashed"):
                dash = ' stroke-dasharray="4 3"' if kind == "dashed" else ""
                self.add(segment(x, row, x + 18, row, colour, f' stroke-width="2"{dash}'))
            elif kind == "box":
                self.add(f'<rect x="{x + 4:.1f}" y="{row - 5:.1f}" width="10" height="10" fill="{colour}"/>')
            else:
                self.add(marker(x + 9, row, kind, colour, 4.5))
            self.text(x + 23, row + 4, label, size=10, anchor="start")
        return self

    def svg(self) -> bytes:
        width, height = f"{self.width:.0f}", f"{self.height:.0f}"
        head = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" {FONT}>',
            f'<rect width="{width}" height="{height}" fill="white"/>',
        ]
        for k, line in enumerate(self.title.splitlines()):
            head.append(_text(self.width / 2, 16 + 15 * k, line, size=12 if k == 0 else 10))
        return "\n".join([*head, *self.parts, "</svg>"]).encode()


def segment(x1: float, y1: float, x2: float, y2: float, colour: str, extra: str = "") -> str:
    return f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" stroke="{colour}"{extra}/>'


def marker(x: float, y: float, kind: str, colour: str, size: float = 3.0, outline: str = "") -> str:
    """A dot, a square, or a downward triangle (hollow or filled) centred on (x, y); a dot may
    have an outline, to stand out on a dark cell."""
    if kind == "square":
        corner, side = f'x="{x - size:.1f}" y="{y - size:.1f}"', f"{2 * size:.1f}"
        return f'<rect {corner} width="{side}" height="{side}" fill="{colour}"/>'
    if kind in ("hollow", "filled"):
        fill = colour if kind == "filled" else "white"
        points = f"{x - size:.1f},{y - size:.1f} {x + size:.1f},{y - size:.1f} {x:.1f},{y + size:.1f}"
        return f'<polygon points="{points}" fill="{fill}" stroke="{colour}"/>'
    stroke = f' stroke="{outline}"' if outline else ""
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size:.1f}" fill="{colour}"{stroke}/>'


@dataclass
class Plot:
    """A plot area inside a canvas with linear x and y scales; y grows upwards."""

    canvas: Canvas
    left: float
    top: float
    width: float
    height: float
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    def x(self, value: float) -> float:
        low, high = self.x_range
        return self.left + (value - low) / (high - low) * self.width

    def y(self, value: float) -> float:
        low, high = self.y_range
        return self.top + self.height - (value - low) / (high - low) * self.height

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def frame(self) -> Plot:
        """The left and bottom axis lines."""
        right = self.left + self.width
        self.canvas.add(
            segment(self.left, self.top, self.left, self.bottom, AXIS),
            segment(self.left, self.bottom, right, self.bottom, AXIS),
        )
        return self

    def y_ticks(self, ticks: Sequence[float], label: str = "", grid: bool = True) -> Plot:
        for tick in ticks:
            y = self.y(tick)
            if grid:
                self.canvas.add(segment(self.left, y, self.left + self.width, y, GRID))
            self.canvas.text(self.left - 5, y + 4, tick_label(tick, ticks), anchor="end")
        if label:
            middle = self.top + self.height / 2
            self.canvas.text(14, middle, label, angle=-90)
        return self

    def x_ticks(self, ticks: Sequence[float], label: str = "") -> Plot:
        for tick in ticks:
            x = self.x(tick)
            self.canvas.add(segment(x, self.bottom, x, self.bottom + 4, AXIS))
            self.canvas.text(x, self.bottom + 16, tick_label(tick, ticks))
        if label:
            self.canvas.text(self.left + self.width / 2, self.bottom + 34, label)
        return self

    def x_labels(self, labels: Sequence[str], positions: Sequence[float], slant: bool) -> Plot:
        """Category labels under the x axis, slanted when they would not fit side by side. Where
        slanted ones are too many to stand apart, every k-th is written, counted back from the last."""
        n = len(labels)
        gap = abs(self.x(positions[-1]) - self.x(positions[0])) / (n - 1) if n > 1 else math.inf
        every = max(1, math.ceil(SLANTED_GAP / gap)) if slant else 1
        for k, (label, position) in enumerate(zip(labels, positions, strict=True)):
            if (n - 1 - k) % every:
                continue
            x = self.x(position)
            if slant:
                y = self.bottom + 12
                self.canvas.text(x + 3, y, label, anchor="end", angle=-45)
            else:
                self.canvas.text(x, self.bottom + 15, label)
        return self

    def y_labels(self, labels: Sequence[str], positions: Sequence[float]) -> Plot:
        for label, position in zip(labels, positions, strict=True):
            self.canvas.text(self.left - 6, self.y(position) + 4, label, anchor="end")
        return self

    def line(
        self,
        xs: Sequence[float],
        ys: Sequence[float],
        colour: str,
        width: float = 1.6,
        dashed: bool = False,
        marker_kind: str = "",
        marker_size: float = 2.5,
    ) -> Plot:
        """A polyline broken where a value is missing (NaN), with an optional marker per point."""
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        run: list[str] = []
        points = [(x, y) for x, y in zip(xs, ys, strict=True)]
        for x, y in [*points, (math.nan, math.nan)]:
            if math.isfinite(x) and math.isfinite(y):
                run.append(f"{self.x(x):.1f},{self.y(y):.1f}")
                continue
            if len(run) > 1:
                self.canvas.add(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" '
                    f'stroke-width="{width}"{dash}/>'
                )
            run = []
        if marker_kind:
            for x, y in points:
                if math.isfinite(x) and math.isfinite(y):
                    self.canvas.add(marker(self.x(x), self.y(y), marker_kind, colour, marker_size))
        return self

    def hbar(self, position: float, value: float, thickness: float, colour: str) -> Plot:
        """A horizontal bar from 0 to `value` centred on y = `position` (`thickness` in y units)."""
        x0, x1 = sorted((self.x(0.0), self.x(value)))
        y0, y1 = sorted((self.y(position + thickness / 2), self.y(position - thickness / 2)))
        self.canvas.add(
            f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" fill="{colour}"/>'
        )
        return self

    def vline(
        self, x: float, y_low: float, y_high: float, colour: str, width: float = 1.0, dotted: bool = False
    ) -> Plot:
        dash = ' stroke-dasharray="2 2"' if dotted else ""
        at = self.x(x)
        self.canvas.add(
            segment(at, self.y(y_low), at, self.y(y_high), colour, f' stroke-width="{width}"{dash}')
        )
        return self


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
    parts.append(_text(14, top + plot_height / 2, y_label, angle=-90))
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
            parts.append(_text(centre + 3, base + 12, label, anchor="end", angle=-40))
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

"""Small server-side SVG charts for the report: a line chart and a horizontal bar chart.

Written by hand so the report needs no plotting library and no JavaScript: each chart is inline
SVG text. Labels stay SVG `<text>` (never converted to paths), so Chinese renders with whatever
CJK font the reader's browser has; the font list below names the common ones first.
"""

from __future__ import annotations

import math
from html import escape

FONT = (
    "'Noto Sans CJK SC','Source Han Sans SC','WenQuanYi Micro Hei','PingFang SC',"
    "'Hiragino Sans GB','Microsoft YaHei',sans-serif"
)
# Colour-blind-safe qualitative palette (Okabe–Ito, then Tableau for the rest).
PALETTE = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
    "#8c564b",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def nice_ticks(vmax: float, n: int = 5) -> list[float]:
    """0 … ≥ vmax in about `n` steps of 1, 2 or 5 × 10^k."""
    if vmax <= 0:
        return [0, 1]
    raw = vmax / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    step = max(step, 1) if vmax >= 1 else step
    top = math.ceil(vmax / step) * step
    return [round(i * step, 10) for i in range(int(round(top / step)) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2g}"


# x labels are rotated this much; two labels must be far enough apart that their boxes (the
# upright rectangles around the rotated text, what a reader sees as crowding) do not touch.
LABEL_ANGLE = 35
FONT_PX = 11


def label_box_width(label: str) -> float:
    """Width of the upright box around a rotated x label: its length along the slant projected
    on the axis plus the font's height projected likewise (a Han character is a full em, an
    ASCII one about 0.62 em)."""
    length = sum(FONT_PX if ord(ch) > 0x2E7F else 0.62 * FONT_PX for ch in label)
    angle = math.radians(LABEL_ANGLE)
    return length * math.cos(angle) + FONT_PX * 1.2 * math.sin(angle)


def label_positions(labels: list[str], plot_width: float) -> list[int]:
    """Which of the evenly spaced x `labels` to draw: every k-th, counted back from the last
    (so the last period is always labelled and no label is squeezed in beside it), k as small
    as keeps the widest label's box clear of the next one's, with 3 px between."""
    n = len(labels)
    if n <= 1:
        return list(range(n))
    spacing = plot_width / (n - 1)
    need = max(label_box_width(label) for label in labels) + 3
    every = max(1, math.ceil(need / spacing))
    return [i for i in range(n) if (n - 1 - i) % every == 0]


def line_chart(
    x_labels: list[str],
    series: list[tuple[str, list[float | None]]],
    *,
    title: str,
    y_label: str = "mentions",
    width: int = 760,
    height: int = 300,
    hover: list[list[str]] | None = None,
) -> str:
    """A `<figure class="chart">` with one line per series (markers at every point, so a single
    period still shows) and an HTML legend. A value of None is a gap (a period with no
    documents): the line stops there instead of dropping to zero, which would draw a fall and a
    rise that never happened. `hover[k][i]`, when given, is the tooltip of series k's point i."""
    left, right, top, bottom = 52, 40, 28, 56
    pw, ph = width - left - right, height - top - bottom
    vmax = max((v for _, vals in series for v in vals if v is not None), default=0)
    ticks = nice_ticks(vmax)
    ymax = ticks[-1] or 1
    n = len(x_labels)

    def x(i: int) -> float:
        return left + (pw / 2 if n == 1 else i * pw / (n - 1))

    def y(v: float) -> float:
        return top + ph - v / ymax * ph

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
        f'font-family="{FONT}" font-size="11">',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for t in ticks:
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
            f'stroke="#ddd"/><text x="{left - 4}" y="{y(t) + 4:.1f}" text-anchor="end" '
            f'fill="#555">{_fmt(t)}</text>'
        )
    for i in label_positions(x_labels, pw):
        parts.append(
            f'<text class="x-label" transform="translate({x(i):.1f},{top + ph + 12}) rotate(35)" '
            f'fill="#555">{escape(x_labels[i])}</text>'
        )
    parts.append(
        f'<text transform="translate(12,{top + ph / 2:.0f}) rotate(-90)" text-anchor="middle" '
        f'fill="#555">{escape(y_label)}</text>'
    )
    for k, (name, vals) in enumerate(series):
        c = colour(k)
        parts.append(f'<g class="series" data-name="{escape(name)}">')
        # One polyline per run of periods that have a value.
        run: list[str] = []
        for i, v in enumerate([*vals, None]):
            if v is not None:
                run.append(f"{x(i):.1f},{y(v):.1f}")
                continue
            if len(run) > 1:
                points = " ".join(run)
                parts.append(
                    f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{points}"/>'
                )
            run = []
        for i, v in enumerate(vals):
            if v is None:
                continue
            tip = hover[k][i] if hover else _fmt(v)
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{c}">'
                f"<title>{escape(name)} · {escape(x_labels[i])}: {escape(tip)}</title></circle>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{colour(k)}"></i>{escape(name)}</span>'
        for k, (name, _) in enumerate(series)
    )
    return (
        f'<figure class="chart">{"".join(parts)}'
        f'<figcaption class="legend">{legend}</figcaption></figure>'
    )


def bar_chart(
    items: list[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    width: int = 760,
) -> str:
    """Horizontal bars, diverging from zero when values are negative (risers and fallers)."""
    row, top, label_w = 22, 28, 220
    # Room for a value printed beside its bar: a faller's value sits left of its bar, so the
    # longest faller must stop this far right of the labels (it was drawn over its label).
    value_w = 56
    height = top + row * max(len(items), 1) + 10
    vmax = max((abs(v) for _, v in items), default=0) or 1
    has_neg = any(v < 0 for _, v in items)
    x0, x1 = label_w + (value_w if has_neg else 0), width - value_w
    zero = (x0 + x1) / 2 if has_neg else x0
    scale = (x1 - zero) / vmax
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
        f'font-family="{FONT}" font-size="12">',
        f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="{top - 4}" y2="{height - 6}" stroke="#999"/>',
    ]
    for i, (label, v) in enumerate(items):
        yy = top + i * row
        w = abs(v) * scale
        xx = zero if v >= 0 else zero - w
        c = "#009E73" if v >= 0 else "#D55E00"
        parts.append(
            f'<text x="{label_w - 6}" y="{yy + 14}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{xx:.1f}" y="{yy + 3}" width="{max(w, 1):.1f}" height="{row - 7}" '
            f'fill="{c}"><title>{escape(label)}: {v:+.2f}{escape(unit)}</title></rect>'
            f'<text x="{(xx + w + 4) if v >= 0 else (xx - 4):.1f}" y="{yy + 14}" '
            f'text-anchor="{"start" if v >= 0 else "end"}" fill="#555">{v:+.2f}</text>'
        )
    parts.append("</svg>")
    return f'<figure class="chart">{"".join(parts)}</figure>'

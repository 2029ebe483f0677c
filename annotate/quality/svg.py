"""Small server-side SVG charts for the quality dashboard: no script, no library, nothing external.

Every label goes through `escape`; the result is marked safe for templates. Sizes are in user
units with a viewBox, so a chart scales with the page.
"""
from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext

GRADE_COLOURS = ("#c0392b", "#e67e22", "#7fb3d5", "#1f618d")  # 0 .. 3
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _svg(width: int, height: int, body: list[str], title: str) -> SafeString:
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>'
        + "".join(body) + "</svg>"
    )


def trend_chart(points: list[tuple[str, float | None, float | None, float | None]], *, title: str,
                width: int = 640, height: int = 220, low: float = -0.2, high: float = 1.0) -> SafeString:
    """A line of values over time with a shaded interval band: points = (label, value, ci_low, ci_high)."""
    left, right, top, bottom = 44, 12, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, v, lo, hi in points for v in (v, lo, hi) if v is not None]
    if values:
        low, high = min(low, min(values)), max(high, max(values))

    def x(i: int) -> float:
        return left + (plot_w * i / (len(points) - 1) if len(points) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (high - v) / (high - low)

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ddd"/>']
    for tick in _ticks(low, high):
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e5e5"/>')
        body.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" {FONT}>{tick:.1f}</text>')
    band = [(i, lo, hi) for i, (_, _, lo, hi) in enumerate(points) if lo is not None and hi is not None]
    if len(band) > 1:
        upper = " ".join(f"{x(i):.1f},{y(hi):.1f}" for i, _, hi in band)
        lower = " ".join(f"{x(i):.1f},{y(lo):.1f}" for i, lo, _ in reversed(band))
        body.append(f'<polygon points="{upper} {lower}" fill="#aed6f1" opacity="0.6"/>')
    line = [(i, v) for i, (_, v, _, _) in enumerate(points) if v is not None]
    if len(line) > 1:
        body.append('<polyline fill="none" stroke="#1f618d" stroke-width="2" points="'
                    + " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in line) + '"/>')
    for i, v in line:
        label = escape(points[i][0])
        body.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="#1f618d"><title>{label}: {v:.3f}</title></circle>')
    if points:
        for i in sorted({0, len(points) - 1}):
            anchor = "start" if i == 0 and len(points) > 1 else "end" if i else "middle"
            body.append(f'<text x="{x(i):.1f}" y="{height - 12}" text-anchor="{anchor}" {FONT}>{escape(points[i][0])}</text>')
    else:
        empty = escape(gettext("no reports yet"))
        body.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" {FONT}>{empty}</text>')
    return _svg(width, height, body, title)


def _ticks(low: float, high: float) -> list[float]:
    step = 0.2 if high - low <= 1.6 else 0.5
    first = round(low / step) * step
    ticks, tick = [], first
    while tick <= high + 1e-9:
        if tick >= low - 1e-9:
            ticks.append(round(tick, 6))
        tick += step
    return ticks


def _heat_colour(value: float | None) -> str:
    """Red (kappa <= 0) through white (0.5) to blue (1); grey where undefined."""
    if value is None:
        return "#eeeeee"
    v = max(0.0, min(1.0, value))
    if v < 0.5:
        t = v / 0.5
        r, g, b = 192 + (255 - 192) * t, 57 + (255 - 57) * t, 43 + (255 - 43) * t
    else:
        t = (v - 0.5) / 0.5
        r, g, b = 255 + (31 - 255) * t, 255 + (97 - 255) * t, 255 + (141 - 255) * t
    return f"#{int(r):02x}{int(g):02x}{int(b):02x}"


# Below this many shared items a pair's kappa is shown, but greyed and with its count: one shared
# item gives a kappa of 0 or 1 (or undefined), which in full colour reads as a verdict.
MIN_PAIR_ITEMS = 10


def heatmap(labels: list[str], values: dict[tuple[int, int], float | None], *, title: str,
            counts: dict[tuple[int, int], int] | None = None, min_items: int = MIN_PAIR_ITEMS,
            cell: int = 30) -> SafeString:
    """A symmetric annotators x annotators matrix (e.g. quadratic kappa); values[(i, j)] for i != j,
    counts[(i, j)] the items the pair shares (written in each cell, "n=")."""
    counts = counts or {}
    margin = 110
    n = len(labels)
    size = margin + cell * n + 40  # room for the last rotated column label
    body = []
    for i, label in enumerate(labels):
        short = escape(label[:16])
        body.append(f'<text x="{margin - 4}" y="{margin + cell * i + cell * 0.65:.1f}" text-anchor="end" {FONT}>{short}</text>')
        cx = margin + cell * i + cell * 0.6
        body.append(f'<text x="{cx:.1f}" y="{margin - 4}" transform="rotate(-60 {cx:.1f} {margin - 4})" {FONT}>{short}</text>')
    for i in range(n):
        for j in range(n):
            value = None if i == j else values.get((i, j), values.get((j, i)))
            shared = None if i == j else counts.get((i, j), counts.get((j, i)))
            few = shared is not None and shared < min_items
            fill = "#ffffff" if i == j else ("#ececec" if few else _heat_colour(value))
            tip = escape(_pair_tip(labels[i], labels[j], value, shared, min_items if few else None))
            body.append(f'<rect x="{margin + cell * j}" y="{margin + cell * i}" width="{cell - 1}" height="{cell - 1}" '
                        f'fill="{fill}" data-items="{"" if shared is None else shared}"><title>{tip}</title></rect>')
            if i == j or cell < 22:
                continue
            x = margin + cell * j + cell / 2 - 0.5
            colour = "#777" if few else ("#fff" if value is not None and (value > 0.8 or value < 0.15) else "#222")
            text = "—" if value is None else f"{value:.2f}"
            body.append(f'<text x="{x:.1f}" y="{margin + cell * i + cell * 0.45:.1f}" text-anchor="middle" fill="{colour}" '
                        f'font-family="system-ui, sans-serif" font-size="8">{text}</text>')
            if shared is not None:
                body.append(f'<text x="{x:.1f}" y="{margin + cell * i + cell * 0.8:.1f}" text-anchor="middle" '
                            f'fill="{colour}" font-family="system-ui, sans-serif" font-size="7">n={shared}</text>')
    if n == 0:
        empty = escape(gettext("no annotator pairs yet"))
        body.append(f'<text x="10" y="20" {FONT}>{empty}</text>')
    return _svg(size, size, body, title)


def _pair_tip(a: str, b: str, value: float | None, shared: int | None, too_few: int | None) -> str:
    """A heatmap cell's tooltip: the pair, its kappa, the items it rests on, and a warning when too few."""
    tip = f"{a} × {b}: " + (gettext("undefined") if value is None else f"{value:.3f}")
    if shared is not None:
        tip += " " + ngettext("on %(n)d shared item", "on %(n)d shared items", shared) % {"n": shared}
    if too_few is not None:
        tip += " " + gettext("(fewer than %(n)d: not a reliable figure)") % {"n": too_few}
    return tip


def _bar_tip(label: str, grade: int, count: int, total: int) -> str:
    return gettext("%(annotator)s: grade %(grade)s × %(count)s (%(share)s)") % {
        "annotator": label, "grade": grade, "count": count, "share": f"{count / total:.0%}"}


def grade_bars(rows: list[tuple[str, list[int]]], *, title: str, width: int = 400) -> SafeString:
    """One horizontal bar per annotator split into the shares of grades 0..3."""
    left, bar, gap, top = 90, 16, 6, 24
    plot_w = width - left - 60
    height = top + (bar + gap) * max(len(rows), 1) + 10
    body = []
    for grade, colour in enumerate(GRADE_COLOURS):
        legend = escape(gettext("grade %(grade)s") % {"grade": grade})
        body.append(f'<rect x="{left + grade * 62}" y="4" width="10" height="10" fill="{colour}"/>'
                    f'<text x="{left + grade * 62 + 14}" y="13" {FONT}>{legend}</text>')
    for row, (label, counts) in enumerate(rows):
        y = top + row * (bar + gap)
        body.append(f'<text x="{left - 6}" y="{y + bar * 0.75:.1f}" text-anchor="end" {FONT}>{escape(label[:18])}</text>')
        total = sum(counts)
        x = float(left)
        for grade, count in enumerate(counts):
            if not total or not count:
                continue
            w = plot_w * count / total
            body.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{GRADE_COLOURS[grade]}">'
                        f'<title>{escape(_bar_tip(label, grade, count, total))}</title></rect>')
            x += w
        body.append(f'<text x="{left + plot_w + 4}" y="{y + bar * 0.75:.1f}" {FONT}>{total}</text>')
    return _svg(width, height, body, title)

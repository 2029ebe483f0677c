"""The run page's loss chart: one line per stage (each trainer counts its own steps), drawn as SVG
on the server so the page needs no chart library and no script."""
from __future__ import annotations

from html import escape

from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from .wording import model_name

COLOURS = ("#2457c5", "#c0392b", "#1e8449", "#8e44ad", "#b9770e")


def loss_chart(curve: list, *, width: int = 640, height: int = 220) -> SafeString:
    """``curve``: [[stage, step, loss], ...] as training.services records it."""
    points = [(str(stage), float(step), float(loss)) for stage, step, loss in curve or []
              if loss is not None and loss == loss]  # NaN is not drawn
    if not points:
        empty = escape(gettext("No loss recorded yet."))
        return mark_safe(f'<p class="muted" id="loss-chart-empty">{empty}</p>')
    left, right, top, bottom = 52, 12, 14, 30
    stages = list(dict.fromkeys(stage for stage, _, _ in points))
    low, high = min(p[2] for p in points), max(p[2] for p in points)
    high = high if high > low else low + 1.0
    last_step = {stage: max(s for st, s, _ in points if st == stage) or 1.0 for stage in stages}
    plot_w, plot_h = width - left - right, height - top - bottom
    x_label = escape(gettext("share of each stage’s steps"))
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#999"/>',
            f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="10">{high:.3g}</text>',
            f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" font-size="10">{low:.3g}</text>',
            f'<text x="{left + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle" font-size="10">'
            f'{x_label}</text>']
    for index, stage in enumerate(stages):
        colour = COLOURS[index % len(COLOURS)]
        coords = " ".join(
            f"{left + plot_w * step / last_step[stage]:.1f},{top + plot_h * (high - loss) / (high - low):.1f}"
            for st, step, loss in points if st == stage)
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{coords}" '
                    f'data-stage="{escape(stage)}"/>')
        shown = escape(model_name(stage) if stage else gettext("training"))
        body.append(f'<text x="{left + plot_w - 4}" y="{top + 12 + 13 * index}" text-anchor="end" font-size="11" '
                    f'fill="{colour}">{shown}</text>')
    label, title = escape(gettext("training loss")), escape(gettext("Training loss per stage"))
    return mark_safe(f'<svg id="loss-chart" role="img" aria-label="{label}" viewBox="0 0 {width} {height}" '
                     f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
                     f'<title>{title}</title>{"".join(body)}</svg>')

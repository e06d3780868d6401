"""The overview's activity chart, drawn on the server as SVG: jobs succeeded and failed (or
discarded) per time bucket over the last hour, as stacked bars. No script draws it, so it
shows without JavaScript and in a screenshot; its numbers are in the ``<title>`` of each bar
and in the text beside it, for screen readers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 240, 48


@dataclass(frozen=True, slots=True)
class Bucket:
    """One time bucket: its label (``HH:MM``), jobs succeeded and jobs failed or discarded."""

    label: str
    succeeded: int
    failed: int


def bars(buckets: Sequence[Bucket], label: str) -> str:
    """The SVG of ``buckets`` (oldest first), described by ``label``."""
    top = max((b.succeeded + b.failed for b in buckets), default=0) or 1
    step = WIDTH / max(len(buckets), 1)
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
             f'aria-label="{escape(label)}"><title>{escape(label)}</title>',
             f'<line x1="0" y1="{HEIGHT - 0.5}" x2="{WIDTH}" y2="{HEIGHT - 0.5}" class="axis"/>']
    for n, bucket in enumerate(buckets):
        x = n * step + 1
        ok = bucket.succeeded / top * (HEIGHT - 2)
        bad = bucket.failed / top * (HEIGHT - 2)
        tip = f"{bucket.label}: {bucket.succeeded} succeeded, {bucket.failed} failed"
        width = f"{step - 2:.1f}"
        parts.append(f'<g><title>{escape(tip)}</title>'
                     f'<rect class="ok" x="{x:.1f}" y="{HEIGHT - 1 - ok:.1f}" width="{width}" height="{ok:.1f}"/>'
                     f'<rect class="bad" x="{x:.1f}" y="{HEIGHT - 1 - ok - bad:.1f}" width="{width}" '
                     f'height="{bad:.1f}"/></g>')
    parts.append("</svg>")
    return "".join(parts)

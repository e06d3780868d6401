"""Writes docs/reference/metrics.md from the metrics ``core.observability.metrics`` registers
with ``prometheus_client``: name, type, labels and help text of each, so the table never drifts
from the code (``docs/check.py`` checks the page is current). What they mean and how to scrape
them: docs/observability.md.

Run: ``python docs/metrics_reference.py``
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from core.observability import metrics

TARGET = Path(__file__).resolve().parent / "reference" / "metrics.md"
HEADER = """# Metrics

Every Prometheus metric `core` registers, generated from the code by
`python docs/metrics_reference.py`. They are served on `GET /metrics` (the gateway's port, or a
lone scheduler's listener); what each one means, the multiprocess mode, the dashboard and the
alert rules: [Observability](../observability.md). Label values are names from the pipeline,
never ids. The process metrics of `prometheus_client` (`process_cpu_seconds_total`, …) come too.

| metric | type | labels | help |
| --- | --- | --- | --- |
"""


def rows() -> Iterator[tuple[str, str, tuple[str, ...], str]]:
    """(name, type, labels, help) of each metric, by name."""
    found: list[tuple[str, str, tuple[str, ...], str]] = []
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            name = value._name + ("_total" if value._type == "counter" else "")  # no public getter
            found.append((name, str(value._type), tuple(value._labelnames), str(value._documentation)))
    for family in metrics.BACKLOG.collect():
        labels = tuple(getattr(family, "_labelnames", ()))  # a custom collector's declared labels
        found.append((str(family.name), str(family.type), labels, str(family.documentation)))
    yield from sorted(found)


def render() -> str:
    """The whole page."""
    lines = [f"| `{name}` | {kind} | {', '.join(f'`{label}`' for label in labels) or '(none)'} | {text} |"
             for name, kind, labels, text in rows()]
    return HEADER + "\n".join(lines) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render())
    sys.stdout.write(f"wrote {TARGET}\n")

"""OpenTelemetry spans of the data path, through the OpenTelemetry API only.

The API is a core dependency; the SDK and its exporters are the optional extra
``core[otel]``. Tracing is on when a real tracer provider is installed: by the application
(``trace.set_tracer_provider``), by ``opentelemetry-instrument``, or by :func:`setup_from_env`
when ``OTEL_TRACES_EXPORTER`` names an exporter (the standard ``OTEL_*`` variables configure
the rest). With the API's default (proxy) provider, :data:`ON` is false and the data path
skips every tracing call behind that one flag: no spans, no context copies, no headers.

The trace context travels with the data: the gateway stores it with each event (in the
event's ``context`` under :data:`CONTEXT_KEY`) and puts it in the ``traceparent`` /
``tracestate`` attributes of every realtime message, which every broker carries as headers.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, NoOpTracerProvider, ProxyTracerProvider, SpanKind

log = logging.getLogger("core.observability")

#: The key of an event's ``context`` that holds the trace context it was received in.
CONTEXT_KEY = "_trace"
#: Whether spans are recorded (a real tracer provider is installed); read it, do not set it.
ON = False
_tracer: trace.Tracer = trace.NoOpTracer()
#: A provider used instead of the global one (:func:`install`; tests), or ``None``.
_installed: trace.TracerProvider | None = None

__all__ = [
    "CONTEXT_KEY",
    "ON",
    "Link",
    "SpanKind",
    "carrier",
    "context_of",
    "current_ids",
    "event_carrier",
    "install",
    "links_of",
    "refresh",
    "setup_from_env",
    "tracer",
]


def refresh() -> bool:
    """Look at the installed tracer provider again; return (and set) :data:`ON`."""
    global ON, _tracer
    provider = _installed or trace.get_tracer_provider()
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true"
    ON = not disabled and not isinstance(provider, ProxyTracerProvider | NoOpTracerProvider)
    _tracer = provider.get_tracer("core") if ON else trace.NoOpTracer()
    return ON


def install(provider: trace.TracerProvider | None) -> bool:
    """Record spans with ``provider`` instead of the global one (``None``: the global one
    again), without touching the process-wide setting, which OpenTelemetry lets be set once.
    Meant for tests and benchmarks; returns :data:`ON`."""
    global _installed
    _installed = provider
    return refresh()


def current_ids() -> tuple[str, str] | None:
    """The current span's trace id and span id in hex, or ``None`` outside a recorded span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


def tracer() -> trace.Tracer:
    """The tracer of ``core`` (a no-op one while tracing is off)."""
    return _tracer


def setup_from_env(service: str) -> bool:
    """Install the SDK's tracer provider if ``OTEL_TRACES_EXPORTER`` asks for one and none is set.

    ``otlp`` (HTTP/protobuf, or gRPC when ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``) and ``console``
    are understood; ``OTEL_SERVICE_NAME`` defaults to ``core-<service>``. Returns :data:`ON`.
    """
    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names or names == ["none"] or not isinstance(trace.get_tracer_provider(), ProxyTracerProvider):
        return refresh()  # nothing asked for, or a provider is installed already
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        log.warning("OTEL_TRACES_EXPORTER=%s but the OpenTelemetry SDK is not installed: "
                    "pip install 'core[otel]'; tracing stays off", ",".join(names))
        return refresh()
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": f"core-{service}"}
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in names:
        exporter: Any
        if name == "console":
            exporter = ConsoleSpanExporter()
        elif name == "otlp":
            try:
                grpc = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") == "grpc"
                module = importlib.import_module(
                    f"opentelemetry.exporter.otlp.proto.{'grpc' if grpc else 'http'}.trace_exporter")
            except ImportError:
                log.warning("OTEL_TRACES_EXPORTER=otlp but no OTLP exporter is installed: pip install 'core[otel]'")
                continue
            exporter = module.OTLPSpanExporter()
        else:
            log.warning("OTEL_TRACES_EXPORTER: unknown exporter %r (known: otlp, console, none)", name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return refresh()


def carrier() -> dict[str, str]:
    """The current trace context as ``traceparent`` (and ``tracestate``) entries."""
    found: dict[str, str] = {}
    propagate.inject(found)
    return found


def context_of(headers: Mapping[str, str] | None) -> otel_context.Context | None:
    """The context a ``traceparent`` in ``headers`` continues, or ``None``."""
    if not headers or "traceparent" not in headers:
        return None
    return propagate.extract(headers)


def links_of(carriers: Iterable[Mapping[str, str] | None]) -> list[Link]:
    """One link per distinct valid trace context among ``carriers``."""
    links: list[Link] = []
    seen: set[tuple[int, int]] = set()
    for found in carriers:
        ctx = context_of(found)
        if ctx is None:
            continue
        span_context = trace.get_current_span(ctx).get_span_context()
        key = (span_context.trace_id, span_context.span_id)
        if span_context.is_valid and key not in seen:
            seen.add(key)
            links.append(Link(span_context))
    return links


def event_carrier(context: Mapping[str, Any]) -> Mapping[str, str] | None:
    """The trace context stored in an event's (or job's) ``context``, if any."""
    found = context.get(CONTEXT_KEY) if isinstance(context, Mapping) else None
    return found if isinstance(found, Mapping) else None

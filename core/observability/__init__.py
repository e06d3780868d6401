"""Observability of the services: Prometheus metrics (:mod:`~core.observability.metrics`),
OpenTelemetry spans (:mod:`~core.observability.tracing`), log formatting with secrets redacted
(:mod:`~core.observability.logs`) and the HTTP routes that serve them
(:mod:`~core.observability.http`). See ``docs/observability.md``."""

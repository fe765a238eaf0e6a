"""OpenTelemetry tracing through FastStream's Kafka middleware; off unless configured."""

from __future__ import annotations

import logging
from typing import Any

from config import ConfigError, environment

log = logging.getLogger("fulfillment.tracing")
VARIABLE = "FULFILLMENT_TRACING"


def tracing_middlewares() -> list[Any]:
    """[] unless FULFILLMENT_TRACING is `otlp` (OTEL_EXPORTER_OTLP_* settings) or `console`."""
    env = environment()
    mode = env.fulfillment_tracing
    if mode == "off":
        return []
    try:
        from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
            SpanExporter,
        )
    except ImportError:
        raise ConfigError(
            f"{VARIABLE}={mode} needs the tracing extra: pip install 'fulfillment-pipeline[otel]'"
        ) from None
    exporter: SpanExporter
    if mode == "console":
        exporter = ConsoleSpanExporter()
    else:  # otlp: the environment allows no other mode
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    service = env.otel_service_name
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    # Console spans are for looking at now; exported ones are batched.
    processor = SimpleSpanProcessor(exporter) if mode == "console" else BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    log.info("tracing on: %s exporter, service %s", mode, service)
    return [KafkaTelemetryMiddleware(tracer_provider=provider)]

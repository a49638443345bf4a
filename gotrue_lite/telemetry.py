"""Metrics and tracing switched on by settings: the Prometheus listener, OpenTelemetry's OTLP push
(the optional `gotrue-lite[otel]` extra), a span per request and per database call."""

from __future__ import annotations

import logging
import os
import re
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from aiohttp import web

from . import __version__, metrics

log = logging.getLogger("gotrue_lite.telemetry")

OTLP_HTTP = "http/protobuf"  # the one OTLP transport gotrue-lite pushes (upstream's default)
INSTALL_HINT = "pip install 'gotrue-lite[otel]'"


def _otel_missing(setting: str) -> bool:
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
        import opentelemetry.sdk  # noqa: F401
    except ImportError:
        log.error("%s: the OpenTelemetry packages are not installed (%s); nothing is exported",
                  setting, INSTALL_HINT)
        return True
    return False


def _protocol_unsupported(setting: str, protocol: str) -> bool:
    if protocol.strip().lower() == OTLP_HTTP:
        return False
    log.error("%s: unsupported OpenTelemetry exporter protocol %r (gotrue-lite pushes %s); nothing is exported",
              setting, protocol, OTLP_HTTP)
    return True


def _resource(service_name: str):
    from opentelemetry.sdk.resources import Resource

    attributes = {"gotrue.version": __version__}
    # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win, as OpenTelemetry's own rules say.
    if not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        attributes["service.name"] = service_name
    return Resource.create(attributes)


# --- metrics ------------------------------------------------------------------------------


class OTLPMetricsSink(metrics.Sink):
    """The counters as OpenTelemetry instruments, pushed over OTLP/HTTP by a periodic reader."""

    def __init__(self, service_name: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.metrics import CallbackOptions, Observation
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

        name, _, _ = metrics.REQUEST_DURATION
        self.provider = MeterProvider(
            metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())],
            resource=_resource(service_name),
            views=[View(instrument_name="http.server.request.duration",
                        aggregation=ExplicitBucketHistogramAggregation(metrics.DURATION_BUCKETS))],
        )
        meter = self.provider.get_meter("gotrue")
        # OpenTelemetry names without the unit and _total suffixes its Prometheus exporter adds.
        self._counters = {key: meter.create_counter(name, description=help)
                          for key, (name, help, _) in metrics.COUNTERS.items()}
        self._labels = {key: labels for key, (_, _, labels) in metrics.COUNTERS.items()}
        self._duration = meter.create_histogram("http.server.request.duration", unit="s",
                                                description=metrics.REQUEST_DURATION[1])
        self._status = meter.create_counter(metrics.STATUS_CODES[0], description=metrics.STATUS_CODES[1])

        def observer(key: str, labels: tuple[str, ...]):
            def observe(options: CallbackOptions):
                return [Observation(value, dict(zip(labels, values)))
                        for values, value in metrics.gauge_values(key).items()]
            return observe

        for key, (name, help, labels) in metrics.GAUGES.items():
            meter.create_observable_gauge(name, callbacks=[observer(key, labels)], description=help)

    def count(self, name: str, amount: float, labels: dict[str, str]) -> None:
        self._counters[name].add(amount, labels or None)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._duration.record(seconds, {"http.request.method": method, "http.response.status_code": status,
                                        "http.route": route})
        self._status.add(1, {"code": status, "http.route": route})

    def close(self) -> None:
        self.provider.shutdown()


async def _serve_prometheus(sink: metrics.PrometheusSink, host: str, port: int) -> web.AppRunner:
    async def scrape(request: web.Request) -> web.Response:
        body, content_type = sink.exposition(request.headers.get("Accept", ""))
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    exporter = web.Application()
    exporter.router.add_get("/", scrape)
    runner = web.AppRunner(exporter, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host or None, port).start()
    log.info("prometheus server listening on %s:%s", host, port)
    return runner


@asynccontextmanager
async def metrics_running(settings, db) -> AsyncIterator[None]:
    """Metrics on for the server's lifetime, as GOTRUE_METRICS_* say, with `db`'s pool gauges."""
    config = settings.metrics
    if not config.enabled:
        yield
        return
    exporter = config.exporter.strip().lower()
    sink: metrics.Sink | None = None
    runner = None
    if exporter == "prometheus":
        sink = metrics.start(metrics.PrometheusSink())
        if isinstance(sink, metrics.PrometheusSink):
            try:
                runner = await _serve_prometheus(sink, config.prometheus_host, config.prometheus_port)
            except OSError as exc:
                metrics.stop()
                raise OSError(exc.errno, f"OTEL_EXPORTER_PROMETHEUS_PORT: cannot listen on "
                                         f"{config.prometheus_host}:{config.prometheus_port}: {exc.strerror}") from exc
    elif exporter == "opentelemetry":
        if not _otel_missing("GOTRUE_METRICS_EXPORTER") and \
                not _protocol_unsupported("OTEL_EXPORTER_OTLP_PROTOCOL", config.exporter_protocol):
            sink = metrics.start(OTLPMetricsSink(settings.tracing.service_name))
            log.info("OpenTelemetry metrics exporter started")
    else:
        log.error("GOTRUE_METRICS_EXPORTER: %r is not an exporter (prometheus, opentelemetry); no metrics",
                  config.exporter)
    if sink is not None:
        watched = _watch_database(db)
    try:
        yield
    finally:
        if sink is not None:
            for name, read in watched:
                metrics.unwatch(name, read)
        if runner is not None:
            await runner.cleanup()
        if sink is not None:
            metrics.stop()


def _watch_database(db) -> list[tuple[str, Any]]:
    def open_connections() -> dict[str, int]:
        stats = db.pool_stats()
        return {"inuse": stats["inuse"], "idle": stats["idle"]}

    def max_open() -> int:
        return db.pool_stats()["max"]

    watched = [("db_open", open_connections), ("db_max_open", max_open)]
    for name, read in watched:
        metrics.watch(name, read)
    return watched


# --- tracing ------------------------------------------------------------------------------


class Tracing:
    """A tracer provider of this server's own (not OpenTelemetry's process-global one, so that
    each server in a process exports with its own settings), batching spans to OTLP/HTTP."""

    def __init__(self, service_name: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.propagators.composite import CompositePropagator
        from opentelemetry.baggage.propagation import W3CBaggagePropagator
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = TracerProvider(resource=_resource(service_name))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("gotrue")
        self.propagator = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])

    def close(self) -> None:
        self.provider.shutdown()  # exports what is still batched


def start_tracing(settings) -> Tracing | None:
    config = settings.tracing
    if not config.enabled:
        return None
    if config.exporter.strip().lower() != "opentelemetry":
        log.error("GOTRUE_TRACING_EXPORTER: %r is not an exporter (opentelemetry); no traces", config.exporter)
        return None
    if _otel_missing("GOTRUE_TRACING_ENABLED") or \
            _protocol_unsupported("OTEL_EXPORTER_OTLP_PROTOCOL", config.exporter_protocol):
        return None
    tracing = Tracing(config.service_name)
    log.info("OpenTelemetry trace exporter started")
    return tracing


def trace_middleware(tracing: Tracing):
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from .api.observe import CLIENT_CLOSED
    from .api.routes import route_template

    tracer, propagator = tracing.tracer, tracing.propagator

    @web.middleware
    async def trace(request: web.Request, handler) -> web.StreamResponse:
        route = route_template(request)
        attributes: dict[str, Any] = {"http.request.method": request.method, "http.route": route,
                                      "url.path": request.path, "url.scheme": request.scheme}
        # upstream's traceChiRouteURLParamsSafely: the values of the route's parameters
        for key, value in request.match_info.items():
            attributes[f"http.route.param.{key}"] = value
        parent = propagator.extract(request.headers)
        with tracer.start_as_current_span(f"{request.method} {route}", context=parent, kind=SpanKind.SERVER,
                                          attributes=attributes, record_exception=False,
                                          set_status_on_exception=False) as span:
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            except BaseException:
                status = CLIENT_CLOSED
                raise
            finally:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))

    return trace


_VERB = re.compile(r"^\s*(?:WITH\b.*?\)\s*)?([A-Za-z]+)", re.DOTALL)


def _operation(sql: str) -> str:
    match = _VERB.match(sql)
    return match.group(1).upper() if match else "SQL"


class _TracedExecutor:
    """Runs each statement inside a span: the statement's text (with $n placeholders, never
    its values), the database's name for its dialect."""

    def __init__(self, inner, tracer, system: str) -> None:
        self._inner, self._tracer, self._system = inner, tracer, system

    def _span(self, name: str, sql: str | None = None):
        from opentelemetry.trace import SpanKind

        attributes = {"db.system.name": self._system}
        if sql is not None:
            attributes["db.query.text"] = sql
        return self._tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes)

    async def fetch_one(self, sql: str, *args: Any):
        with self._span(_operation(sql), sql):
            return await self._inner.fetch_one(sql, *args)

    async def fetch_all(self, sql: str, *args: Any):
        with self._span(_operation(sql), sql):
            return await self._inner.fetch_all(sql, *args)

    async def fetch_val(self, sql: str, *args: Any):
        with self._span(_operation(sql), sql):
            return await self._inner.fetch_val(sql, *args)

    async def execute(self, sql: str, *args: Any):
        with self._span(_operation(sql), sql):
            return await self._inner.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TracedDatabase(_TracedExecutor):
    """A Database whose calls are spans beneath the request's span."""

    async def run_transaction(self, steps):
        with self._span("transaction"):
            return await self._inner.run_transaction(steps)

    @asynccontextmanager
    async def transaction(self):
        with self._span("transaction"):
            async with self._inner.transaction() as tx:
                yield _TracedExecutor(tx, self._tracer, self._system)

    async def execute_script(self, sql: str) -> None:
        with self._span("script"):
            await self._inner.execute_script(sql)


def traced(db, tracing: Tracing | None):
    if tracing is None:
        return db
    return TracedDatabase(db, tracing.tracer, "postgresql" if db.dialect == "postgres" else "sqlite")

"""Counters, request histograms and gauges for operators; every call is a no-op while metrics are off.

Code counts with `metrics.count("signins", method="password")`. A new counter is one row in
COUNTERS. Names follow upstream where it has one (its Prometheus names, as its OpenTelemetry
exporter writes them), so dashboards built for GoTrue keep working.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

log = logging.getLogger("gotrue_lite.metrics")

# What code counts by -> (exported name without _total, help, label names).
COUNTERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "signins": ("gotrue_signins", "Sessions started by a sign-in (a sign-up that signs in too), by method", ("method",)),
    "signups": ("gotrue_signups", "Users created by sign-up, by provider", ("provider",)),
    "refreshes": ("gotrue_token_refreshes", "Refresh tokens exchanged for a new session token", ()),
    "refresh_token_reuses": ("gotrue_refresh_token_reuse_detections",
                             "Revoked refresh tokens presented again after the reuse interval", ()),
    "rate_limited": ("gotrue_rate_limit_refusals", "Requests refused by a rate limit, by limit", ("limit",)),
    "email_rate_limited": ("gotrue_email_rate_limit_counter",
                           "Number of times an email rate limit has been triggered", ()),
    "mails_sent": ("global_auth_email_send_operations", "Number of email send operations", ("type",)),
    "mail_errors": ("global_auth_email_send_errors", "Number of email send errors", ("type",)),
    "sms_sent": ("gotrue_sms_send_operations", "Number of SMS send operations, by provider", ("provider",)),
    "sms_errors": ("gotrue_sms_send_errors", "Number of SMS send errors, by provider", ("provider",)),
    "hook_calls": ("gotrue_hook_calls", "Auth hook and webhook calls, by hook and outcome (ok, error)",
                   ("hook", "outcome")),
    "password_hash_submitted": ("gotrue_generate_from_password_submitted",
                                "Number of submitted GenerateFromPassword hashing attempts", ()),
    "password_hash_completed": ("gotrue_generate_from_password_completed",
                                "Number of completed GenerateFromPassword hashing attempts", ()),
    "password_check_submitted": ("gotrue_compare_hash_and_password_submitted",
                                 "Number of submitted CompareHashAndPassword hashing attempts", ()),
    "password_check_completed": ("gotrue_compare_hash_and_password_completed",
                                 "Number of completed CompareHashAndPassword hashing attempts", ()),
}

# Read when scraped: name -> (exported name, help, label names). A watcher returns a number, or
# {label values: number} when the gauge has labels.
GAUGES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "running": ("gotrue_running", "Whether GoTrue is running (always 1)", ()),
    "bcrypt_queue": ("gotrue_bcrypt_queue", "Password hashes and checks submitted and not finished", ()),
    # otelsql's database/sql pool statistics, as upstream exports them.
    "db_open": ("db_sql_connection_open", "Database connections in the pool, by status (inuse, idle)",
                ("status",)),
    "db_max_open": ("db_sql_connection_max_open", "Maximum number of open database connections", ()),
}

# The request histogram: OpenTelemetry's HTTP server duration (semantic conventions), as
# upstream's otelhttp middleware exports it, and upstream's status-code counter.
REQUEST_DURATION = ("http_server_request_duration_seconds", "Duration of HTTP server requests",
                    ("http_request_method", "http_response_status_code", "http_route"))
STATUS_CODES = ("http_status_codes", "Number of returned HTTP status codes", ("code", "http_route"))
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class Sink:
    """Where counts go while metrics are on: prometheus_client (PrometheusSink) or OTLP
    (telemetry.OTLPMetricsSink)."""

    def count(self, name: str, amount: float, labels: dict[str, str]) -> None: ...

    def request(self, route: str, method: str, status: int, seconds: float) -> None: ...

    def close(self) -> None: ...


_sink: Sink | None = None
_users = 0
_watchers: dict[str, Callable[[], Any]] = {"running": lambda: 1}


def count(name: str, amount: float = 1, **labels: str) -> None:
    """Add to a counter of COUNTERS; nothing happens while metrics are off."""
    if _sink is not None:
        _sink.count(name, amount, labels)


def request(route: str, method: str, status: int, seconds: float) -> None:
    if _sink is not None:
        _sink.request(route, method, status, seconds)


def enabled() -> bool:
    return _sink is not None


def watch(name: str, read: Callable[[], Any]) -> None:
    """Let gauge `name` of GAUGES be read from `read` when metrics are collected."""
    _watchers[name] = read


def unwatch(name: str, read: Callable[[], Any]) -> None:
    if _watchers.get(name) is read:
        del _watchers[name]


def gauge_values(name: str) -> dict[tuple[str, ...], float]:
    """The watched gauge's current values by label values; {} when nothing watches it."""
    read = _watchers.get(name)
    if read is None:
        return {}
    try:
        value = read()
    except Exception:  # noqa: BLE001 - a scrape must not fail because one gauge could not be read
        log.exception("cannot read gauge %s", name)
        return {}
    if isinstance(value, dict):
        return {tuple(key) if isinstance(key, tuple) else (key,): float(v) for key, v in value.items()}
    return {(): float(value)}


def start(sink: Sink) -> Sink:
    """Switch metrics on (once per process; later servers in the same process share the sink,
    as upstream's global meter provider does)."""
    global _sink, _users
    if _sink is None:
        _sink = sink
    else:
        sink.close()
    _users += 1
    return _sink


def stop() -> None:
    global _sink, _users
    _users -= 1
    if _users <= 0 and _sink is not None:
        _sink.close()
        _sink, _users = None, 0


class PrometheusSink(Sink):
    """Counters in a prometheus_client registry of their own, served as text by exposition()."""

    def __init__(self) -> None:
        import prometheus_client
        from prometheus_client import CollectorRegistry, Counter, Histogram
        from prometheus_client.core import GaugeMetricFamily

        prometheus_client.disable_created_metrics()  # *_created series: noise for counters of one process
        self.registry = CollectorRegistry(auto_describe=True)
        for collector in (prometheus_client.ProcessCollector, prometheus_client.PlatformCollector,
                          prometheus_client.GCCollector):
            collector(registry=self.registry)
        self._counters = {key: Counter(name, help, labels, registry=self.registry)
                          for key, (name, help, labels) in COUNTERS.items()}
        name, help, labels = REQUEST_DURATION
        self._duration = Histogram(name, help, labels, buckets=DURATION_BUCKETS, registry=self.registry)
        name, help, labels = STATUS_CODES
        self._status = Counter(name, help, labels, registry=self.registry)

        class Gauges:
            def collect(self):
                for key, (name, help, labels) in GAUGES.items():
                    family = GaugeMetricFamily(name, help, labels=labels)
                    for label_values, value in gauge_values(key).items():
                        family.add_metric(list(label_values), value)
                    yield family

            def describe(self):
                return []

        self.registry.register(Gauges())

    def count(self, name: str, amount: float, labels: dict[str, str]) -> None:
        counter = self._counters[name]
        (counter.labels(**labels) if labels else counter).inc(amount)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._duration.labels(method, str(status), route).observe(seconds)
        self._status.labels(str(status), route).inc()

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The registry in the format the scraper asks for (Accept): Prometheus text 0.0.4, or
        OpenMetrics."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

"""Metrics and traces as an operator gets them: Prometheus text scraped and parsed by
prometheus_client's own parser after real requests, OTLP pushed to a receiver on loopback."""

from __future__ import annotations

import socket
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import PASSWORD, bearer, connection_refused, refresh, sign_in, signup_session
from hook_server import hook_server  # noqa: F401 - a fixture
from otlp_receiver import Receiver, attributes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prometheus_env(port: int) -> dict[str, str]:
    return {"GOTRUE_METRICS_ENABLED": "true", "GOTRUE_METRICS_EXPORTER": "prometheus",
            "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1", "OTEL_EXPORTER_PROMETHEUS_PORT": str(port)}


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of everything served at / on the metrics port."""
    resp = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4"), resp.headers
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(resp.text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_prometheus_counts_what_happened(make_server, backend: str) -> None:
    port = free_port()
    server = make_server(backend, **prometheus_env(port), GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL="0")
    before = scrape(port)

    email = f"metrics-{uuid.uuid4().hex[:10]}@example.com"
    session = signup_session(server, email)  # autoconfirm: a sign-up that signs in
    assert sign_in(server, email).status_code == 200
    assert sign_in(server, email, "wrong password").status_code == 400
    fresh = refresh(server, session["refresh_token"])
    assert fresh.status_code == 200, fresh.text
    assert refresh(server, fresh.json()["refresh_token"]).status_code == 200
    # Two generations old, past the (zero) reuse interval: reuse.
    reused = refresh(server, session["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error_code"] == "refresh_token_already_used", reused.text
    # Recovery mail, then the same again at once: the per-address cooldown answers 429.
    assert httpx.post(f"{server.url}/recover", json={"email": email}, timeout=30).status_code == 200
    again = httpx.post(f"{server.url}/auth/v1/recover", json={"email": email}, timeout=30)
    assert again.status_code == 429 and again.json()["error_code"] == "over_email_send_rate_limit", again.text
    admin = httpx.get(f"{server.url}/admin/users/{session['user']['id']}", headers=bearer(server.service_role_key),
                      timeout=30)
    assert admin.status_code == 200, admin.text
    assert httpx.get(f"{server.url}/no/such/route", timeout=30).status_code == 404

    after = scrape(port)
    assert moved(before, after, "gotrue_signups_total", provider="email") == 1
    assert moved(before, after, "gotrue_signins_total", method="password") == 2
    assert moved(before, after, "gotrue_token_refreshes_total") == 2
    assert moved(before, after, "gotrue_refresh_token_reuse_detections_total") == 1
    assert moved(before, after, "gotrue_rate_limit_refusals_total", limit="over_email_send_rate_limit") == 1
    assert moved(before, after, "gotrue_email_rate_limit_counter_total") == 1
    assert moved(before, after, "global_auth_email_send_operations_total", type="recovery") == 1
    assert moved(before, after, "global_auth_email_send_errors_total", type="recovery") == 0
    # bcrypt: one hash (the sign-up), three checks (two sign-ins, one wrong password), none waiting now.
    assert moved(before, after, "gotrue_generate_from_password_submitted_total") == 1
    assert moved(before, after, "gotrue_generate_from_password_completed_total") == 1
    assert moved(before, after, "gotrue_compare_hash_and_password_completed_total") == 2
    assert value(after, "gotrue_bcrypt_queue") == 0
    # Requests by route template (the /auth/v1 prefix folded in), method and status.
    count = "http_server_request_duration_seconds_count"
    assert moved(before, after, count, http_route="/token", http_request_method="POST",
                 http_response_status_code="200") == 3
    assert moved(before, after, count, http_route="/token", http_request_method="POST",
                 http_response_status_code="400") == 2
    assert moved(before, after, count, http_route="/recover", http_request_method="POST",
                 http_response_status_code="429") == 1
    assert moved(before, after, count, http_route="/admin/users/{user_id}", http_request_method="GET",
                 http_response_status_code="200") == 1
    assert moved(before, after, count, http_route="noroute", http_request_method="GET",
                 http_response_status_code="404") == 1
    assert moved(before, after, "http_status_codes_total", code="200", http_route="/signup") == 1
    slow = value(after, "http_server_request_duration_seconds_bucket", http_route="/signup",
                 http_request_method="POST", http_response_status_code="200", le="+Inf")
    assert slow >= 1 and value(after, "http_server_request_duration_seconds_sum", http_route="/signup",
                               http_request_method="POST", http_response_status_code="200") > 0
    # No raw paths (one series per user id) among the routes.
    routes = {dict(labels).get("http_route") for name, labels in after if name == count}
    assert not any(session["user"]["id"] in (route or "") for route in routes), routes
    # The pool and the process.
    assert value(after, "db_sql_connection_max_open") >= 1
    assert ("db_sql_connection_open", frozenset({("status", "idle")})) in after
    assert value(after, "gotrue_running") == 1
    assert value(after, "process_cpu_seconds_total") > 0


def test_sms_sends_and_failures_are_counted(make_server) -> None:
    port = free_port()
    # Twilio at a closed local port: the text cannot go out.
    closed = free_port()
    server = make_server("sqlite", **prometheus_env(port), GOTRUE_EXTERNAL_PHONE_ENABLED="true",
                         GOTRUE_SMS_PROVIDER="twilio", GOTRUE_SMS_TWILIO_ACCOUNT_SID="AC123",
                         GOTRUE_SMS_TWILIO_AUTH_TOKEN="twilio-token", GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID="MG1",
                         GOTRUE_LITE_SMS_API_URL=f"http://127.0.0.1:{closed}")
    before = scrape(port)
    resp = httpx.post(f"{server.url}/otp", json={"phone": "15550001234"}, timeout=30)
    assert resp.status_code >= 400, resp.text
    after = scrape(port)
    assert moved(before, after, "gotrue_sms_send_operations_total", provider="twilio") == 1
    assert moved(before, after, "gotrue_sms_send_errors_total", provider="twilio") == 1


def test_metrics_off_serve_nothing(make_server) -> None:
    from gotrue_lite import metrics

    port = free_port()
    server = make_server("sqlite", OTEL_EXPORTER_PROMETHEUS_PORT=str(port), OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1")
    signup_session(server)
    assert not metrics.enabled()
    assert connection_refused(port)


def test_prometheus_port_in_use_stops_start_up(make_server) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="OTEL_EXPORTER_PROMETHEUS_PORT: cannot listen on 127.0.0.1"):
            make_server("sqlite", **prometheus_env(taken.getsockname()[1]))


# --- OpenTelemetry: traces and the OTLP metrics push ------------------------------------------


@pytest.fixture
def receiver(monkeypatch):
    found = Receiver()
    # The OpenTelemetry SDK reads the standard variables from the process environment.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", found.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    yield found
    found.close()


def test_traces_reach_an_otlp_receiver_with_routes_and_database_calls(make_server, backend: str, receiver) -> None:
    server = make_server(backend, GOTRUE_TRACING_ENABLED="true", GOTRUE_TRACING_SERVICE_NAME="auth-under-test")
    email = f"traced-{uuid.uuid4().hex[:10]}@example.com"
    session = signup_session(server, email)
    trace_id = uuid.uuid4().hex
    caller = f"00-{trace_id}-{'ab' * 8}-01"  # W3C traceparent of a caller's span
    resp = httpx.post(f"{server.url}/auth/v1/token?grant_type=password", json={"email": email, "password": PASSWORD},
                      headers={"traceparent": caller}, timeout=30)
    assert resp.status_code == 200, resp.text
    user_id = session["user"]["id"]
    admin = httpx.get(f"{server.url}/admin/users/{user_id}", headers=bearer(server.service_role_key), timeout=30)
    assert admin.status_code == 200
    server.stop()  # flushes the batched spans

    assert receiver.content_types and all(ct == "application/x-protobuf" for ct in receiver.content_types)
    spans = receiver.spans()
    requests = {span.span_id: (resource, span, attributes(span.attributes)) for resource, span in spans
                if "http.route" in attributes(span.attributes)}
    by_route = {(attrs["http.request.method"], attrs["http.route"]): (resource, span, attrs)
                for resource, span, attrs in requests.values()}
    resource, token_span, attrs = by_route[("POST", "/token")]
    assert resource["service.name"] == "auth-under-test"
    assert token_span.name == "POST /token" and attrs["http.response.status_code"] == 200
    assert attrs["url.path"] == "/auth/v1/token"
    # The caller's trace goes on: same trace id, the caller's span as parent.
    assert token_span.trace_id.hex() == trace_id and token_span.parent_span_id.hex() == "ab" * 8
    _, admin_span, admin_attrs = by_route[("GET", "/admin/users/{user_id}")]
    assert admin_attrs["http.route.param.user_id"] == user_id
    assert ("POST", "/signup") in by_route

    # Database calls are spans beneath the request's span, with the statement and never its values.
    def beneath(root) -> list:
        found, frontier = [], {root.span_id}
        while frontier:
            children = [span for _, span in spans if span.parent_span_id in frontier]
            found += children
            frontier = {span.span_id for span in children}
        return found

    database_calls = [span for span in beneath(token_span) if "db.system.name" in attributes(span.attributes)]
    system = "postgresql" if backend == "postgres" else "sqlite"
    assert database_calls and all(attributes(s.attributes)["db.system.name"] == system for s in database_calls)
    statements = [attributes(s.attributes).get("db.query.text", "") for s in database_calls]
    assert any("users" in text and text.lstrip().upper().startswith("SELECT") for text in statements), statements
    assert all(email not in text for text in statements)
    assert any(s.name == "transaction" for s in database_calls)
    assert beneath(admin_span)


def test_metrics_pushed_over_otlp(make_server, receiver) -> None:
    server = make_server("sqlite", GOTRUE_METRICS_ENABLED="true")  # upstream's default exporter: opentelemetry
    signup_session(server)

    def signups_seen() -> bool:
        return any(point.as_int >= 1 for metric in receiver.metrics().get("gotrue_signups", [])
                   for point in metric.sum.data_points)

    receiver.wait_for(signups_seen)
    durations = receiver.metrics()["http.server.request.duration"]
    routes = {attributes(point.attributes)["http.route"] for metric in durations
              for point in metric.histogram.data_points}
    assert "/signup" in routes
    assert any(metric.gauge.data_points for metric in receiver.metrics()["db_sql_connection_max_open"])


def test_request_ids_are_taken_from_the_configured_header_and_echoed(make_server) -> None:
    server = make_server("sqlite", REQUEST_ID_HEADER="X-Correlation-Id")
    resp = httpx.get(f"{server.url}/settings", headers={"X-Correlation-Id": "edge-42"}, timeout=30)
    assert resp.headers["X-Request-Id"] == "edge-42" and resp.headers["X-Correlation-Id"] == "edge-42"
    own = httpx.get(f"{server.url}/settings", timeout=30)
    assert uuid.UUID(own.headers["X-Request-Id"]) and own.headers["X-Correlation-Id"] == own.headers["X-Request-Id"]


def test_hook_calls_are_counted_by_hook_and_outcome(make_server, hook_server) -> None:
    port = free_port()
    hooks = hook_server()
    hooks.answer("custom_access_token", lambda payload: {"claims": {**payload["claims"], "tenant": "t1"}})
    hooks.answer("before_user_created", lambda payload: {"error": {"http_code": 403, "message": "not here"}}
                 if payload["user"]["email"].startswith("refused") else {})
    server = make_server("sqlite", **prometheus_env(port), **hooks.env("custom_access_token", "before_user_created"))
    before = scrape(port)
    signup_session(server, f"metrics-{uuid.uuid4().hex[:10]}@example.com")
    refused = httpx.post(f"{server.url}/signup", json={"email": f"refused-{uuid.uuid4().hex[:8]}@example.com",
                                                       "password": PASSWORD}, timeout=30)
    assert refused.status_code == 403, refused.text
    after = scrape(port)
    assert moved(before, after, "gotrue_hook_calls_total", hook="custom_access_token", outcome="ok") == 1
    assert moved(before, after, "gotrue_hook_calls_total", hook="before_user_created", outcome="ok") == 1
    assert moved(before, after, "gotrue_hook_calls_total", hook="before_user_created", outcome="error") == 1

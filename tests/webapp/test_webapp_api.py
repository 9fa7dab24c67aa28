"""The HTTP API against a real, migrated PostgreSQL writer."""

from __future__ import annotations

import json
import re
import signal
import time

import httpx
import pytest
from webapp_support import DB_NAME, AppProcess, db_env, free_port


def test_health_is_cheap_and_carries_a_request_id(client: httpx.Client) -> None:
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["x-request-id"])
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    # A request id outside [A-Za-z0-9._:-]{1,128} is replaced, not echoed into headers and logs.
    assert client.get("/health", headers={"X-Request-ID": "bad id"}).headers["x-request-id"] != "bad id"


def test_ready_reports_the_role(client: httpx.Client) -> None:
    resp = client.get("/health/ready")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ready" and body["role"] == "writer" and body["region"] == "us-east-1"
    assert body["latency_ms"] >= 0


def test_status(client: httpx.Client) -> None:
    body = client.get("/api/status").json()
    assert body["region"] == "us-east-1"
    assert body["role"] == "writer"
    assert body["replication_lag_s"] is None
    assert body["writes_to"] == "local"
    assert body["version"] and body["task"] and body["time"] and body["role_checked_at"]


def test_create_then_read(client: httpx.Client, pg) -> None:
    resp = client.post("/api/data", json={"key": "colour", "value": "blue"})
    assert resp.status_code == 201, resp.text
    record = resp.json()
    assert record["id"] == 1
    assert (record["key"], record["value"], record["region"]) == ("colour", "blue", "us-east-1")
    assert record["created_at"].endswith("+00:00")
    assert client.get("/api/data/1").json() == record
    assert pg.execute("SELECT key, region FROM records", dbname=DB_NAME) == [("colour", "us-east-1")]


# The same body asked so that the edge (app/api/edge.py) reads it, and so that it goes on to FastAPI (a JSON
# content type the edge leaves alone).
EDGE = {"content-type": "application/json"}
FASTAPI = {"content-type": "application/vnd.api+json"}


@pytest.mark.parametrize("headers", [EDGE, FASTAPI], ids=["edge", "fastapi"])
@pytest.mark.parametrize(
    ("body", "missing"),
    [({"key": "k"}, ["value"]), ({"value": "v"}, ["key"]), ({}, ["key", "value"])],
)
def test_key_and_value_are_required(client: httpx.Client, pg, headers: dict, body: dict, missing: list) -> None:
    """A body without ``value`` was stored with an empty value: it is a 422 naming the field, on both paths."""
    resp = client.post("/api/data", content=json.dumps(body), headers=headers)
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert [(err["loc"], err["type"]) for err in detail] == [(["body", field], "missing") for field in missing]
    assert all(err["msg"] for err in detail)
    assert pg.execute("SELECT count(*) FROM records", dbname=DB_NAME) == [(0,)]


@pytest.mark.parametrize("headers", [EDGE, FASTAPI], ids=["edge", "fastapi"])
def test_an_empty_value_sent_on_purpose_is_stored(client: httpx.Client, headers: dict) -> None:
    resp = client.post("/api/data", content=b'{"key": "k", "value": ""}', headers=headers)
    assert resp.status_code == 201, resp.text
    assert (resp.json()["key"], resp.json()["value"]) == ("k", "")


@pytest.mark.parametrize("path", ["/api/data/", "/api/data/1/"])
def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_origin(client: httpx.Client, path: str) -> None:
    """Starlette's slash redirect built its Location from the Host header: behind the load balancer and the
    edge, the internal origin's name (leaked, and the client sent away from the public entry). Such paths
    are unknown paths. The edge leaves them to FastAPI, so this is FastAPI's answer."""
    assert client.post("/api/data", json={"key": "k", "value": "v"}).json()["id"] == 1
    origin = {"host": "origin.hawa-sandbox.example.com"}
    for resp in (client.get(path, headers=origin), client.post(path, json={"key": "k", "value": "v"}, headers=origin)):
        assert resp.status_code == 404, (resp.status_code, resp.headers.get("location"))
        assert "location" not in resp.headers
        assert "origin.hawa-sandbox.example.com" not in resp.text
    assert client.get(path.rstrip("/")).status_code == 200  # without the slash: the records as usual


def test_missing_record_is_404(client: httpx.Client) -> None:
    resp = client.get("/api/data/42")
    assert resp.status_code == 404
    assert resp.json()["reason"] == "not-found"


def test_pagination_walks_newest_first(client: httpx.Client) -> None:
    for i in range(5):
        assert client.post("/api/data", json={"key": f"k{i}", "value": "v"}).status_code == 201
    page = client.get("/api/data", params={"limit": 2}).json()
    assert [r["key"] for r in page["items"]] == ["k4", "k3"]
    page = client.get("/api/data", params={"limit": 2, "before": page["next_before"]}).json()
    assert [r["key"] for r in page["items"]] == ["k2", "k1"]
    page = client.get("/api/data", params={"limit": 2, "before": page["next_before"]}).json()
    assert [r["key"] for r in page["items"]] == ["k0"]
    assert page["next_before"] is None
    assert client.get("/api/data").json()["items"][0]["key"] == "k4"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": "v"}, "key"),
        ({"key": ""}, "key"),
        ({"key": "k" * 129}, "key"),
        ({"key": "k", "value": "v" * 4097}, "value"),
        ({"key": "nul\u0000"}, "key"),
        ({"key": 5}, "key"),
        ({"key": "k", "extra": 1}, "extra"),
    ],
)
def test_bad_body_is_422_naming_the_field(client: httpx.Client, body: dict, field: str) -> None:
    resp = client.post("/api/data", json=body)
    assert resp.status_code == 422
    assert ["body", field] in [err["loc"] for err in resp.json()["detail"]]


def test_lone_surrogate_is_422_not_500(client: httpx.Client) -> None:
    resp = client.post(
        "/api/data", content=b'{"key": "\\ud800", "value": "v"}', headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "key"]


@pytest.mark.parametrize(("path", "param"), [("/api/data?limit=0", "limit"), ("/api/data?before=-1", "before")])
def test_bad_query_is_422(client: httpx.Client, path: str, param: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["query", param]


def test_metrics_count_requests_by_route(client: httpx.Client) -> None:
    client.get("/api/data/7")
    text = client.get("/metrics").text
    assert re.search(r'http_requests_total\{method="GET",route="/api/data/\{record_id\}",status="404"\} [1-9]', text)
    assert "http_request_duration_seconds_bucket" in text
    assert "app_database_is_writer 1.0" in text


def test_metrics_expose_the_same_metrics(client: httpx.Client) -> None:
    """The metrics' names and types, as prometheus_client's Counter, Histogram and Gauge exposed them."""
    client.get("/api/data/7")
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", client.get("/metrics").text, re.M))
    assert {name: kind for name, kind in types.items() if not name.startswith(("python_", "process_"))} == {
        "app_database_is_writer": "gauge",
        "http_requests_total": "counter",
        "http_requests_created": "gauge",
        "http_request_duration_seconds": "histogram",
        "http_request_duration_seconds_created": "gauge",
    }
    assert "python_gc_objects_collected_total" in types and "process_cpu_seconds_total" in types
    text = client.get("/metrics").text
    for suffix in ("_bucket", "_count", "_sum"):
        assert f"http_request_duration_seconds{suffix}{{" in text


@pytest.mark.parametrize("method", ["HEAD", "POST", "DELETE"])
def test_health_answers_get_only(client: httpx.Client, method: str) -> None:
    resp = client.request(method, "/health")
    assert (resp.status_code, resp.headers["allow"]) == (405, "GET")
    if method != "HEAD":
        assert resp.json() == {"detail": "Method Not Allowed"}
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["x-request-id"])


def test_openapi_docs(client: httpx.Client) -> None:
    """With INTERNAL_ENDPOINTS=true, as the tests' apps run (webapp_support.db_env)."""
    assert client.get("/docs").status_code == 200
    assert client.get("/redoc").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/health/ready", "/api/status", "/api/data", "/api/data/{record_id}"} <= set(paths)


def test_docs_and_metrics_are_off_unless_asked_for(start_app, pg) -> None:
    """By default (production) the API's description and the metrics are unknown paths; the API is not."""
    env = db_env(host=f"127.0.0.1:{pg.port}")
    del env["INTERNAL_ENDPOINTS"]
    app = start_app(env)
    with app.client() as http:
        for path in ("/docs", "/redoc", "/openapi.json", "/metrics"):
            resp = http.get(path)
            assert (resp.status_code, resp.json()) == (404, {"detail": "Not Found"}), path
        assert http.post("/api/data", json={"key": "k", "value": "v"}).status_code == 201
        assert http.get("/api/data/1").json()["key"] == "k"
        assert http.get("/health/ready").status_code == 200


def test_access_log_is_json_with_the_request_id(client: httpx.Client, app: AppProcess) -> None:
    client.get("/api/data/9", headers={"X-Request-ID": "trace-me-42"})
    # The line is written just after the response is sent: give it a moment.
    deadline = time.monotonic() + 5
    while "trace-me-42" not in app.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(line for line in app.logs().splitlines() if "trace-me-42" in line)
    assert '"route":"/api/data/{record_id}"' in line and '"status":404' in line
    assert "webapp-test-password" not in app.logs()


def test_the_log_is_one_json_line_per_request(client: httpx.Client, app: AppProcess) -> None:
    """Every line of the log is a JSON object of the same shape, whoever wrote it (the access log, the
    logging module, uvicorn); each request is one line, and the probes none."""
    asked = {
        "one-line-get": ("GET", "/api/data"),
        "one-line-get-one": ("GET", "/api/data/1"),
        "one-line-post": ("POST", "/api/data"),
        "one-line-422": ("GET", "/api/data?limit=0"),
        "one-line-404": ("GET", "/nowhere"),
    }
    for rid, (method, path) in asked.items():
        body = {"key": "k", "value": "v"} if method == "POST" else None
        assert client.request(method, path, json=body, headers={"X-Request-ID": rid}).headers["x-request-id"] == rid
    for path in ("/health", "/api/status", "/metrics"):
        client.get(path, headers={"X-Request-ID": f"probe-{path.replace('/', '-')}"})
    client.get("/api/data", headers={"X-Request-ID": "last"})
    deadline = time.monotonic() + 5
    while '"request_id":"last"' not in app.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    docs = [json.loads(line) for line in app.logs().splitlines()]  # each line, JSON
    assert all({"time", "level", "logger", "message"} <= doc.keys() for doc in docs)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["time"]) for doc in docs)
    for rid, (method, path) in asked.items():
        [line] = [doc for doc in docs if doc.get("request_id") == rid]
        assert (line["logger"], line["message"], line["method"], line["path"]) == (
            "app.access",
            "request",
            method,
            path.split("?")[0],
        )
    assert not [doc for doc in docs if str(doc.get("request_id")).startswith("probe-")]
    assert any(doc["logger"] == "app" and doc["message"] == "serving" for doc in docs)


def test_database_down_gives_503_not_500(start_app) -> None:
    dead = start_app(db_env(host=f"127.0.0.1:{free_port()}", DB_CONNECT_TIMEOUT="1"))
    with dead.client() as http:
        assert http.get("/health").status_code == 200  # liveness touches nothing else
        ready = http.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable" and "database" in ready.json()["reason"]
        # A write waits WRITE_WAIT (5 s) for a writer first: with its role unknown the region may be promoting one.
        started = time.monotonic()
        write = http.post("/api/data", json={"key": "k", "value": "v"}, timeout=20)
        assert 4.5 <= time.monotonic() - started < 15
        for resp in (
            write,
            http.get("/api/data"),
            http.get("/api/data/1"),
        ):
            assert resp.status_code == 503, resp.text
            assert resp.headers["retry-after"]
            assert resp.json()["reason"] in {"database-unavailable", "database-busy"}
        assert http.get("/api/status").json()["role"] == "unknown"
    assert "Traceback" not in dead.logs()


def test_an_unready_answer_names_a_category_and_logs_the_detail(start_app, pg) -> None:
    """The database's error names hosts, users and databases: the log has it, the (public) answer not."""
    secret = "internal_db_name_4711"
    app = start_app(db_env(host=f"127.0.0.1:{pg.port}", DB_NAME=secret, DB_CONNECT_TIMEOUT="1"))
    with app.client() as http:
        resp = http.get("/health/ready")
    assert resp.status_code == 503
    assert resp.json() == {"region": "us-east-1", "status": "unavailable", "reason": "database unavailable"}
    for leak in (secret, "127.0.0.1", str(pg.port), "postgres"):
        assert leak not in resp.text
    deadline = time.monotonic() + 5
    while '"logger":"app.health"' not in app.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    [line] = [json.loads(line) for line in app.logs().splitlines() if '"logger":"app.health"' in line]
    assert line["level"] == "WARNING" and f'database "{secret}" does not exist' in line["message"]


def test_status_names_a_role_check_failure_by_its_kind_only(start_app, pg) -> None:
    """/api/status is public too: a failed role check says what kind of failure, the log says which."""
    secret = "internal_db_name_4712"
    app = start_app(db_env(host=f"127.0.0.1:{pg.port}", DB_NAME=secret, DB_CONNECT_TIMEOUT="1"))
    deadline = time.monotonic() + 10
    with app.client() as http:
        while (body := http.get("/api/status").json())["role_error"] is None and time.monotonic() < deadline:
            time.sleep(0.1)
    assert body["role"] == "unknown" and body["role_error"] == "database unavailable", body
    for leak in (secret, "127.0.0.1", str(pg.port)):
        assert leak not in json.dumps(body)
    lines = [json.loads(line) for line in app.logs().splitlines() if "role check failed" in line]
    assert len(lines) == 1 and f'database "{secret}" does not exist' in lines[0]["message"], "logged once, in full"


def test_graceful_shutdown(start_app, pg) -> None:
    proc = start_app(db_env(host=f"127.0.0.1:{pg.port}"))
    # uvicorn drains, runs the lifespan shutdown (pools closed), then re-raises SIGTERM for its exit status.
    assert proc.stop() in (0, -signal.SIGTERM)
    logs = proc.logs()
    assert '"message":"stopped"' in logs and "Application shutdown complete" in logs
    assert "Traceback" not in logs

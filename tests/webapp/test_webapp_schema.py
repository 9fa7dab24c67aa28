"""Property-based tests over the OpenAPI schema (schemathesis): no 5xx for any generated input, and a
422 that names the offending field. Bounded examples keep the run within seconds.

The operations are driven with hypothesis directly (``operation.as_strategy()``): schemathesis's
pytest fixture loader (``schemathesis.pytest.from_fixture``) breaks on pytest 9.
"""

from __future__ import annotations

import itertools

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from webapp_support import AppProcess

MAX_EXAMPLES = 15  # per operation and mode (valid and invalid input)


def check(case, seen: set[tuple[str, int]]) -> None:
    """One generated request; ``case`` is a schemathesis Case."""
    response = case.call(timeout=10)
    seen.add((f"{case.method} {case.operation.path}", response.status_code))
    where = f"{case.method} {case.formatted_path} {case.query or ''} {case.body!r:.200}"
    assert response.status_code < 500, f"{where} -> {response.status_code}: {response.text}"
    if response.status_code == 422:
        detail = response.json()["detail"]
        assert detail, response.text
        for err in detail:
            # ["body", "key"], ["query", "limit"], ["path", "record_id"], ["header", "Idempotency-Key"]; ["body"]
            # for a body that is not an object.
            assert err["loc"][0] in {"body", "query", "path", "header"}, (where, err)
            assert err["msg"]
    else:
        ctype = response.headers.get("content-type") or [""]
        assert (ctype[0] if isinstance(ctype, list) else ctype).startswith("application/json"), where


def test_no_server_error_and_422_names_the_field(app: AppProcess, pg) -> None:
    schema = schemathesis.openapi.from_url(f"{app.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /api/data", "GET /api/data/{record_id}", "GET /api/data"}
    seen: set[tuple[str, int]] = set()
    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:
            check(case, seen)

        try:
            run()
        except Unsatisfiable:
            # No invalid input exists for an operation without parameters or body (GET /health).
            assert mode is GenerationMode.NEGATIVE, operation.label
    # The generator did reach both sides of the validation (a test that cannot fail proves nothing).
    assert {("POST /api/data", 201), ("POST /api/data", 422), ("GET /api/data", 200)} <= seen, sorted(seen)

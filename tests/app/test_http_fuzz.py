"""Property-based fuzz of the HTTP surface from the app's own OpenAPI description (Schemathesis),
over a real socket against `diffusellm serve`: no 5xx, and no 2xx on a protected route without
its credentials."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from tests.app.support_http import ADMIN_TOKEN, WORKER_TOKEN, Served, start_serve, stop

PUBLIC = {"/healthz", "/metrics"}
"""Everything else needs a token or a signature."""
EXAMPLES = 12
"""Per operation and credential set: about 10 operations, so a few hundred requests in all."""
SLOW_IS_FINE = (hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.filter_too_much,
                hypothesis.HealthCheck.data_too_large)
"""Every example is a request over a socket to another process."""
Operation = APIOperation[Any, Any, Any, Any]
AnyCase = Case[Any]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    running = start_serve(tmp_path_factory.mktemp("fuzz"), "server.openapi=true")
    try:
        yield running
    finally:
        stop(running)


def _operations(served: Served) -> list[Operation]:
    """The operations in the description the running app serves at /openapi.json (turned on here)."""
    api: Any = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    results: list[Any] = list(api.get_all_operations())
    assert all(isinstance(r, Ok) for r in results), results
    found: list[Operation] = [r.ok() for r in results]
    assert {op.path for op in found} >= {"/webhooks/github", "/api/worker/claim", "/query_graph", "/healthz"}
    return found


def _cases(operation: Any) -> st.SearchStrategy[AnyCase]:
    """Inputs that fit the description and inputs that break it (an Operation; typed Any because
    schemathesis leaves its Case's type parameter open)."""
    return st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                     operation.as_strategy(GenerationMode.NEGATIVE))


def _call(case: AnyCase, served: Served, headers: dict[str, str]) -> Any:
    if case.path.endswith("/claim") and isinstance(case.body, dict):
        wait = case.body.get("wait_seconds", 25)
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
            case.body["wait_seconds"] = 0  # a claim's long poll would only slow the fuzz down
    return case.call(base_url=served.url, headers=headers, timeout=30)


def _fuzz(served: Served, check: Callable[[AnyCase], None]) -> None:
    for operation in _operations(served):
        @hypothesis.given(case=_cases(operation))
        @hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                             suppress_health_check=SLOW_IS_FINE)
        def run(case: AnyCase) -> None:
            check(case)

        run()


def test_without_credentials_nothing_protected_answers_2xx_and_nothing_5xx(served: Served) -> None:
    def check(case: AnyCase) -> None:
        response = _call(case, served, {})
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:300]}"
        if case.path not in PUBLIC:
            assert not 200 <= response.status_code < 300, f"{case.method} {case.formatted_path} answered"

    _fuzz(served, check)


def test_with_the_tokens_no_input_makes_a_5xx(served: Served) -> None:
    def check(case: AnyCase) -> None:
        token = ADMIN_TOKEN if case.path == "/query_graph" else WORKER_TOKEN
        response = _call(case, served, {"Authorization": f"Bearer {token}"})
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:300]}"

    _fuzz(served, check)

"""schemathesis against /openapi.json of a running server: generated requests, valid and
invalid, never get a 5xx, a status the document does not list, or a body outside its schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.secure import SecureServer
from tests.integration.test_personalizer_sdk import SHOP, start

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    running = start(tmp_path_factory.mktemp("personalizer-schema"))
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("mode", "policy", "examples"),
    [
        (GenerationMode.POSITIVE, SHOP, 80),  # the engine behind every operation
        (GenerationMode.POSITIVE, "support.next_step", 40),  # a policy with a catalog
        (GenerationMode.NEGATIVE, SHOP, 60),  # requests outside the schema: 4xx, never 5xx
        (GenerationMode.POSITIVE, None, 30),  # generated policy names: unknown, 404
    ],
)
def test_openapi_conformance(
    server: SecureServer, mode: GenerationMode, policy: str | None, examples: int
) -> None:
    base = f"http://127.0.0.1:{server.server.http_port}"
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    fixed = {"policy": policy} if policy is not None else None
    strategy = schema.as_strategy(generation_mode=mode, path_parameters=fixed)

    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base, checks=CHECKS)

    run()


def test_the_document_lists_exactly_the_routes(server: SecureServer) -> None:
    base = f"http://127.0.0.1:{server.server.http_port}"
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    labels = sorted(r.ok().label for r in schema.get_all_operations() if isinstance(r, Ok))
    prefix = "/policies/{policy}/personalizer"
    expected = []
    for version in ("", "/v1.0"):
        expected += [
            f"POST {prefix}{version}/rank",
            f"POST {prefix}{version}/events/{{eventId}}/reward",
            f"POST {prefix}{version}/events/{{eventId}}/activate",
            f"GET {prefix}{version}/configurations/service",
            f"PUT {prefix}{version}/configurations/service",
            f"GET {prefix}{version}/configurations/policy",
        ]
    assert labels == sorted(expected)

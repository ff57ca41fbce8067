"""Fuzzing the proxy's own OpenAPI document: whatever a client sends, no 5xx comes back."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.core.settings import Settings
from services.rest_proxy.app import create_app
from tests.services.rest_proxy.conftest import create_topic

pytestmark = pytest.mark.integration

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_topic(native_stack: Settings) -> str:
    return create_topic(native_stack.kafka_bootstrap_servers, partitions=2)


# The document is static, so it is loaded from the app at import (schemathesis' lazy fixture
# loader breaks on pytest 9); the requests go to the proxy the native stack runs.
schema = schemathesis.openapi.from_dict(create_app().openapi())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


def test_the_running_proxy_serves_the_fuzzed_document(native_stack: Settings) -> None:
    served = httpx.get(f"{native_stack.rest_proxy_url}/openapi.json").json()
    assert served == schema.raw_schema


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_request_gets_a_documented_non_5xx_answer(
    case: schemathesis.Case, native_stack: Settings
) -> None:
    case.call_and_validate(base_url=native_stack.rest_proxy_url, checks=CHECKS)


@schema.include(method="POST").parametrize()
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_produce_body_to_a_real_topic_gets_a_documented_non_5xx_answer(
    case: schemathesis.Case, native_stack: Settings, fuzz_topic: str
) -> None:
    # Random topic names almost never exist: aim the bodies at one that does.
    case.path_parameters = {"topic": fuzz_topic}
    case.call_and_validate(base_url=native_stack.rest_proxy_url, checks=CHECKS)

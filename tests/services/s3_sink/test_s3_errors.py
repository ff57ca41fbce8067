"""Which S3 failures the sink retries and which stop it."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from services.core.errors import TransientError
from services.s3_sink.sink import ConnectorFailedError, classify_s3_error

pytestmark = pytest.mark.unit


def client_error(status: int, code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    "exc",
    [
        client_error(500, "InternalError"),
        client_error(503, "SlowDown"),
        client_error(400, "RequestTimeout"),
        client_error(429, "TooManyRequests"),
        EndpointConnectionError(endpoint_url="http://s3"),
        ReadTimeoutError(endpoint_url="http://s3"),
    ],
)
def test_connection_trouble_throttling_and_server_errors_are_retried(
    exc: ClientError | BotoCoreError,
) -> None:
    assert isinstance(classify_s3_error(exc, "putting k"), TransientError)


@pytest.mark.parametrize(
    "exc", [client_error(403, "AccessDenied"), client_error(404, "NoSuchBucket")]
)
def test_refusals_stop_the_connector(exc: ClientError) -> None:
    error = classify_s3_error(exc, "putting k")
    assert isinstance(error, ConnectorFailedError)
    assert str(error).startswith("putting k: ")

"""Writers of records to Kinesis: through the API Gateway's ``/streams`` resources, or direct.

The gateway hands Kinesis errors back as HTTP 400 with Kinesis' own body
(``{"__type": "ProvisionedThroughputExceededException", ...}``), so throttling is told
apart from a bad request by that type, not by the status code. Both writers count every
record as acknowledged (it got a sequence number) or failed, and resend only the records
Kinesis throttled.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from emulator.sending import RETRY_STATUS, ProduceResult, with_retries
from services.core.errors import TerminalError, TransientError

log = logging.getLogger(__name__)

# Kinesis error types worth another attempt: throttling and its own internal failures.
RETRY_TYPES = (
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "InternalFailure",
    "ServiceUnavailable",
)
# PutRecords takes at most 500 records per call.
MAX_RECORDS_PER_REQUEST = 500

Record = tuple[str, dict[str, Any]]  # (partition key, row)
Entry = dict[str, Any]  # PutRecords' answer for one record: SequenceNumber or ErrorCode


class KinesisWriter:
    """Sends records, retrying throttled ones with backoff; subclasses do the transport."""

    def __init__(self, max_attempts: int = 5, base64_data: bool = False) -> None:
        self.max_attempts = max_attempts
        self.base64_data = base64_data

    def close(self) -> None:
        """Release the connections."""

    def put_record(self, stream: str, record: Record) -> ProduceResult:
        """One record, as the original client sends it."""
        return self._send(stream, [record], lambda pending: [self._put_one(stream, pending[0])])

    def put_records(self, stream: str, records: Sequence[Record]) -> ProduceResult:
        """Up to 500 records in one request."""
        if len(records) > MAX_RECORDS_PER_REQUEST:
            raise TerminalError(f"at most {MAX_RECORDS_PER_REQUEST} records per request")
        return self._send(stream, list(records), lambda pending: self._put_many(stream, pending))

    def data(self, row: dict[str, Any]) -> Any:
        """The ``Data`` value: the row itself, or its JSON base64-encoded (some clients do)."""
        if not self.base64_data:
            return row
        return base64.b64encode(json.dumps(row, default=str).encode()).decode()

    def _put_one(self, stream: str, record: Record) -> Entry:
        raise NotImplementedError

    def _put_many(self, stream: str, records: list[Record]) -> list[Entry]:
        raise NotImplementedError

    def _send(
        self, stream: str, records: list[Record], put: Callable[[list[Record]], list[Entry]]
    ) -> ProduceResult:
        """Run ``put(pending)`` until each record is acknowledged, failed, or attempts run out."""
        result = ProduceResult()
        pending = records

        def attempt() -> None:
            nonlocal pending
            throttled: list[Record] = []
            reason = ""
            for record, entry in zip(pending, put(pending), strict=True):
                if entry.get("SequenceNumber"):
                    result.acknowledged += 1
                elif entry.get("ErrorCode") in RETRY_TYPES:
                    throttled.append(record)
                    reason = f"{entry['ErrorCode']}: {entry.get('ErrorMessage')}"
                else:
                    result.fail(1, f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
            pending = throttled
            if pending:
                raise TransientError(f"{len(pending)} records not accepted: {reason}")

        with_retries(attempt, self.max_attempts, result, f"stream {stream}", lambda: len(pending))
        return result


class KinesisApiClient(KinesisWriter):
    """``PUT /streams/<stream>/record`` and ``/records`` on the API Gateway, one pooled client."""

    def __init__(
        self,
        base_url: str,
        max_attempts: int = 5,
        timeout: float = 30.0,
        pool: int = 16,
        base64_data: bool = False,
    ) -> None:
        super().__init__(max_attempts, base64_data)
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            headers={"Content-Type": "application/json"},
        )

    def close(self) -> None:
        self.http.close()

    def _put_one(self, stream: str, record: Record) -> Entry:
        key, row = record
        body = {"StreamName": stream, "Data": self.data(row), "PartitionKey": key}
        return self._put(f"/streams/{stream}/record", body)

    def _put_many(self, stream: str, records: list[Record]) -> list[Entry]:
        body = {"records": [{"data": self.data(row), "partition-key": key} for key, row in records]}
        entries = self._put(f"/streams/{stream}/records", body).get("Records")
        if not isinstance(entries, list) or len(entries) != len(records):
            raise TerminalError(f"stream {stream}: PutRecords answered {entries!r:.200}")
        return entries

    def _put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = self.http.put(path, content=json.dumps(body, default=str))
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        detail = f"HTTP {resp.status_code} from {resp.request.url}: {resp.text[:200]}"
        if resp.status_code in RETRY_STATUS:
            raise TransientError(detail)
        if resp.status_code >= 400:
            if any(kind in resp.text for kind in RETRY_TYPES):
                raise TransientError(detail)
            raise TerminalError(detail)
        payload = resp.json()
        if not isinstance(payload, dict):
            raise TerminalError(f"unexpected response: {detail}")
        return payload


class KinesisDirectClient(KinesisWriter):
    """PutRecord(s) with boto3, bypassing API Gateway; Kinesis gets what the API would send."""

    def __init__(
        self, boto3_kwargs: dict[str, Any], max_attempts: int = 5, base64_data: bool = False
    ) -> None:
        import boto3
        from botocore.config import Config

        super().__init__(max_attempts, base64_data)
        # Retries are this class's job (per record); botocore would resend whole batches.
        config = Config(retries={"max_attempts": 1, "mode": "standard"})
        self.kinesis = boto3.client("kinesis", config=config, **boto3_kwargs)

    def _bytes(self, row: dict[str, Any]) -> bytes:
        # The API's template stores the JSON text of the Data value: do the same.
        return json.dumps(self.data(row), default=str).encode()

    def _put_one(self, stream: str, record: Record) -> Entry:
        key, row = record
        return dict(
            self._call(
                self.kinesis.put_record, StreamName=stream, Data=self._bytes(row), PartitionKey=key
            )
        )

    def _put_many(self, stream: str, records: list[Record]) -> list[Entry]:
        entries = [{"Data": self._bytes(row), "PartitionKey": key} for key, row in records]
        return list(
            self._call(self.kinesis.put_records, StreamName=stream, Records=entries)["Records"]
        )

    @staticmethod
    def _call(fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in RETRY_TYPES:
                raise TransientError(f"{code}: {exc}") from exc
            raise TerminalError(f"{code}: {exc}") from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self.kinesis.close()

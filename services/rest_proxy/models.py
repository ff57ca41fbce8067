"""The Confluent REST Proxy API v2 on the wire: media types, bodies and error answers.

Bodies and messages follow Confluent's API reference (docs.confluent.io, "Confluent REST Proxy
API Reference", API v2) and its source (``confluentinc/kafka-rest``: ``Errors.java``,
``entities/v2``; ``confluentinc/rest-utils``: ``JacksonMessageBodyProvider``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from pydantic_core import from_json, to_json
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from services.core.errors import PinpipeError, TerminalError, TransientError

KAFKA_V2_JSON = "application/vnd.kafka.v2+json"
KAFKA_JSON_V2_JSON = "application/vnd.kafka.json.v2+json"
# What the proxy can answer with, most preferred first (Confluent's response.mediatype.preferred).
RESPONSE_MEDIA_TYPES = (KAFKA_V2_JSON, "application/vnd.kafka+json", "application/json")


# ---- errors: raised anywhere, rendered as {"error_code", "message"} at the API boundary ------
class ApiError(PinpipeError):
    """An answer with Confluent's error body; subclasses fix the status and error code."""

    status_code = 500
    error_code = 500
    default_message = "Internal Server Error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def body(self) -> ErrorMessage:
        """The JSON body Confluent sends for this error."""
        return ErrorMessage(error_code=self.error_code, message=self.message)


def _http_error(status: HTTPStatus, phrase: str | None = None) -> str:
    # Jersey's wording for its own HTTP errors, e.g. "HTTP 415 Unsupported Media Type".
    return f"HTTP {status.value} {phrase or status.phrase}"


class TopicNotFoundError(ApiError, TerminalError):
    status_code = 404
    error_code = 40401
    default_message = "Topic not found."


class PartitionNotFoundError(ApiError, TerminalError):
    status_code = 404
    error_code = 40402
    default_message = "Partition not found."


class NotAcceptableError(ApiError, TerminalError):
    status_code = error_code = 406
    default_message = _http_error(HTTPStatus.NOT_ACCEPTABLE)


class PayloadTooLargeError(ApiError, TerminalError):
    status_code = error_code = 413
    # Python 3.13 renamed the phrase; JAX-RS still says this.
    default_message = _http_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request Entity Too Large")


class UnsupportedMediaTypeError(ApiError, TerminalError):
    status_code = error_code = 415
    default_message = _http_error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE)


class UnprocessableEntityError(ApiError, TerminalError):
    status_code = error_code = 422


class KafkaRetriableError(ApiError, TransientError):
    """The cluster did not answer in time; the same request may succeed later."""

    error_code = 50003


class KafkaFailureError(ApiError, TerminalError):
    """The cluster refused the operation."""

    error_code = 50002


def http_error_message(status_code: int) -> str:
    """Jersey's message for an HTTP error it raises itself (404 no route, 405, ...)."""
    return _http_error(HTTPStatus(status_code))


# ---- bodies ------------------------------------------------------------------------------
class ErrorMessage(BaseModel):
    error_code: int
    message: str


class ProduceRecord(BaseModel):
    """One record of the JSON embedded format: any JSON value and key, an optional partition."""

    model_config = ConfigDict(extra="forbid")

    key: Any = None
    value: Any = None
    partition: StrictInt | None = None


class KafkaRecord(NamedTuple):
    """A record as it goes to Kafka: serialized key and value, partition or None to choose."""

    key: bytes | None
    value: bytes | None
    partition: int | None


class ProduceRequest(BaseModel):
    """``POST /topics/{topic}`` body; the schema fields only matter to schema-based formats."""

    model_config = ConfigDict(extra="forbid")

    records: list[ProduceRecord] = Field(min_length=1)
    key_schema: str | None = None
    key_schema_id: StrictInt | None = None
    value_schema: str | None = None
    value_schema_id: StrictInt | None = None

    def kafka_records(self) -> list[KafkaRecord]:
        """Keys and values as compact UTF-8 JSON, the bytes Confluent's JSON serializer writes."""
        return [
            KafkaRecord(_json_bytes(r.key), _json_bytes(r.value), r.partition) for r in self.records
        ]


def _json_bytes(value: Any) -> bytes | None:
    # A null key or value stays a Kafka null. Jackson writes an overflowing number (1e400) as
    # the string "Infinity" (QUOTE_NON_NUMERIC_NUMBERS); so does this.
    return None if value is None else to_json(value, inf_nan_mode="strings")


# The produce answer is built per record, so it is plain typed dicts, not validated models.
class PartitionOffset(TypedDict):
    """Where one record went, or why it did not: an entry of ``offsets``, in request order."""

    partition: int | None
    offset: int | None
    error_code: int | None
    error: str | None


class ProduceResponse(TypedDict):
    offsets: list[PartitionOffset]
    key_schema_id: int | None
    value_schema_id: int | None


class Replica(BaseModel):
    broker: int
    leader: bool
    in_sync: bool


class Partition(BaseModel):
    partition: int
    leader: int
    replicas: list[Replica]


class Topic(BaseModel):
    name: str
    configs: dict[str, str]
    partitions: list[Partition]


# ---- parsing a produce body the way the Confluent proxy judges it ----------------------------
def parse_produce_request(body: bytes) -> ProduceRequest:
    """Parse and validate a JSON-embedded produce body; any fault is a 422 with one message."""
    try:
        # Strict JSON, as Jackson's defaults: NaN and Infinity literals are not JSON.
        data = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise UnprocessableEntityError(f"Invalid JSON: {exc}") from None
    try:
        return ProduceRequest.model_validate(data)
    except ValidationError as exc:
        raise UnprocessableEntityError(_confluent_message(exc)) from None


# Constraint messages in JSON's words, as Confluent's "<field> <constraint>" (pydantic's own
# would name Python types and classes).
_REQUIREMENTS = {
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "int_type": "must be an integer",
    "string_type": "must be a string",
}


def _confluent_message(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_context=False)
    # Jackson stops at the first unknown property, before any constraint is checked: an
    # unwrapped row ({"index": ...}) is reported as its first field.
    unknown = next((e for e in errors if e["type"] == "extra_forbidden"), None)
    if unknown is not None:
        return f"Unrecognized field: {unknown['loc'][-1]}"
    first = errors[0]
    loc = first["loc"]
    if loc == ("records",) and (
        first["type"] in {"missing", "too_short"} or first["input"] is None
    ):
        return "records may not be empty"
    requirement = _REQUIREMENTS.get(first["type"], first["msg"])
    return f"{_json_path(loc) or 'Request body'} {requirement}"


def _json_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path

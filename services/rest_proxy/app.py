"""The HTTP side of the proxy: Confluent REST Proxy v2 routes, content negotiation, errors.

Errors are raised as ``ApiError`` wherever they are found and become Confluent's
``{"error_code", "message"}`` bodies here only. The order of checks is Jersey's: route (404,
405), Content-Type (415), Accept (406), body (413, 422), then the topic (40401, 40402).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.core.settings import Settings, get_settings
from services.rest_proxy.models import (
    KAFKA_JSON_V2_JSON,
    KAFKA_V2_JSON,
    RESPONSE_MEDIA_TYPES,
    ApiError,
    ErrorMessage,
    NotAcceptableError,
    Partition,
    PayloadTooLargeError,
    ProduceRequest,
    ProduceResponse,
    Topic,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
    http_error_message,
    parse_produce_request,
)
from services.rest_proxy.producer import Backend, KafkaBackend
from services.rest_proxy.proxy_config import KafkaClientConfig, load_client_config

log = logging.getLogger(__name__)


class KafkaJSONResponse(JSONResponse):
    """Compact JSON with Confluent's v2 media type (or whatever Accept negotiated)."""

    media_type = KAFKA_V2_JSON

    def render(self, content: Any) -> bytes:
        return to_json(content)


def kafka_json(payload: Any, media_type: str = KAFKA_V2_JSON) -> Response:
    """A JSON body with the negotiated Kafka media type."""
    return KafkaJSONResponse(content=payload, media_type=media_type)


def error_response(
    status_code: int, body: ErrorMessage, headers: Mapping[str, str] | None = None
) -> Response:
    """Confluent's error body with the given HTTP status."""
    return KafkaJSONResponse(content=body, status_code=status_code, headers=headers)


# ---- dependencies: all async, so none costs a trip through the thread pool ---------------------
async def get_backend(request: Request) -> Backend:
    """The Kafka backend the lifespan opened."""
    backend: Backend = request.app.state.backend
    return backend


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def require_json_embedded_format(request: Request) -> None:
    """415 unless the body is the JSON embedded format; charset and other parameters are ignored."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != KAFKA_JSON_V2_JSON:
        raise UnsupportedMediaTypeError()


async def response_media_type(request: Request) -> str:
    """The media type to answer with, chosen from the Accept header (406 if none fits)."""
    return negotiate(request.headers.get("accept"))


async def request_body(
    request: Request, settings: Annotated[Settings, Depends(get_app_settings)]
) -> bytes:
    """The body, read up to the configured limit (413 beyond it, before reading it all)."""
    limit = settings.rest_proxy_max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError()
        chunks.append(chunk)
    return b"".join(chunks)


async def produce_request(body: Annotated[bytes, Depends(request_body)]) -> ProduceRequest:
    """The validated produce body (422 with Confluent's message otherwise)."""
    return parse_produce_request(body)


BackendDep = Annotated[Backend, Depends(get_backend)]
MediaType = Annotated[str, Depends(response_media_type)]
ProduceBody = Annotated[ProduceRequest, Depends(produce_request)]


def negotiate(accept: str | None) -> str:
    """Pick the best response media type for an Accept header, by q then by our preference."""
    if not accept or not accept.strip():
        return KAFKA_V2_JSON
    ranges = [_media_range(part) for part in accept.split(",") if part.strip()]
    best, best_q = None, 0.0
    for candidate in RESPONSE_MEDIA_TYPES:
        matches = [
            (spec, q) for media, q in ranges if (spec := _specificity(media, candidate)) >= 0
        ]
        if matches:
            # The most specific range that matches decides (RFC 9110, 12.5.1).
            q = max(matches)[1]
            if q > best_q:
                best, best_q = candidate, q
    if best is None:
        raise NotAcceptableError()
    return best


def _media_range(part: str) -> tuple[str, float]:
    media, *params = (p.strip() for p in part.split(";"))
    q = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
    return media.lower(), q if 0.0 <= q <= 1.0 else 0.0


def _specificity(media_range: str, media_type: str) -> int:
    if media_range == media_type:
        return 2
    if media_range == f"{media_type.partition('/')[0]}/*":
        return 1
    return 0 if media_range == "*/*" else -1


# ---- routes -------------------------------------------------------------------------------
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorMessage,
        "description": "40401 Topic not found. / 40402 Partition not found.",
    },
    406: {"model": ErrorMessage, "description": "No acceptable response media type."},
    422: {"model": ErrorMessage, "description": "The body is not a JSON-embedded produce request."},
    500: {"model": ErrorMessage, "description": "50002 Kafka error / 50003 retriable Kafka error."},
}
PRODUCE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    413: {"model": ErrorMessage, "description": "The body is larger than the proxy accepts."},
    415: {"model": ErrorMessage, "description": "Content-Type is not the JSON embedded format."},
}
PRODUCE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            KAFKA_JSON_V2_JSON: {"schema": {"$ref": "#/components/schemas/ProduceRequest"}}
        },
    }
}


router = APIRouter(default_response_class=KafkaJSONResponse)


@router.get("/topics", response_model=list[str], responses=ERRORS)
async def list_topics(backend: BackendDep, media_type: MediaType) -> Response:
    """Names of the cluster's topics."""
    return kafka_json(await backend.topic_names(), media_type)


@router.get("/topics/{topic}", response_model=Topic, responses=ERRORS)
async def get_topic(topic: str, backend: BackendDep, media_type: MediaType) -> Response:
    """A topic's configuration and partitions."""
    info = await backend.topic(topic)
    configs = await backend.topic_configs(topic)
    return kafka_json(
        Topic(name=info.name, configs=configs, partitions=info.partitions), media_type
    )


@router.get("/topics/{topic}/partitions", response_model=list[Partition], responses=ERRORS)
async def list_partitions(topic: str, backend: BackendDep, media_type: MediaType) -> Response:
    """A topic's partitions with their leaders and replicas."""
    return kafka_json((await backend.topic(topic)).partitions, media_type)


@router.post(
    "/topics/{topic}",
    response_model=ProduceResponse,
    responses=PRODUCE_ERRORS,
    openapi_extra=PRODUCE_BODY,
    dependencies=[Depends(require_json_embedded_format)],
)
async def produce(
    topic: str, backend: BackendDep, media_type: MediaType, body: ProduceBody
) -> Response:
    """Produce records; answered once the broker acknowledged or refused every one."""
    deliveries = await backend.produce(topic, body.kafka_records())
    response: ProduceResponse = {
        "offsets": [d.partition_offset() for d in deliveries],
        "key_schema_id": None,
        "value_schema_id": None,
    }
    return kafka_json(response, media_type)


# ---- errors at the boundary: every one leaves as Confluent's body ---------------------------
async def api_error(request: Request, exc: ApiError) -> Response:
    if exc.status_code >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc.message)
    return error_response(exc.status_code, exc.body())


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """No route (404) or no such method (405), worded as Jersey words them."""
    body = ErrorMessage(error_code=exc.status_code, message=http_error_message(exc.status_code))
    return error_response(exc.status_code, body, headers=exc.headers)


async def validation_error(request: Request, exc: RequestValidationError) -> Response:
    return error_response(422, UnprocessableEntityError(str(exc.errors()[0]["msg"])).body())


async def server_error(request: Request, exc: Exception) -> Response:
    """A fault of the proxy itself: the only 500 that is not a Kafka error."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, ApiError().body())


def _openapi(app: FastAPI) -> dict[str, Any]:
    # The produce body is read raw (for 413/415/422 the Confluent way), so its schema is added
    # to the document by hand for clients and fuzzers.
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        body = ProduceRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(body.pop("$defs", {}))
        components["ProduceRequest"] = body
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(
    settings: Settings | None = None, client_config: KafkaClientConfig | None = None
) -> FastAPI:
    """The proxy application; the Kafka backend opens and closes with its lifespan."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backend = KafkaBackend.start(client_config or load_client_config(settings))
        try:
            yield
        finally:
            app.state.backend.close()

    app = FastAPI(
        title="pinpipe Kafka REST proxy",
        version="2",
        description="The part of the Confluent REST Proxy API v2 that the pipeline uses.",
        default_response_class=KafkaJSONResponse,
        lifespan=lifespan,
        exception_handlers={
            ApiError: api_error,
            StarletteHTTPException: http_error,
            RequestValidationError: validation_error,
            Exception: server_error,
        },
    )
    app.state.settings = settings
    app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app

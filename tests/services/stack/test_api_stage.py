"""The one OpenAPI document, imported into LocalStack and executed for real."""

from __future__ import annotations

import base64
import json

import boto3
import httpx
import pytest

from services.core.config_files import API_GATEWAY_OPENAPI
from services.core.rest_api import find_rest_apis
from services.core.settings import Settings
from services.stack.api_stage import ApiGatewayService
from tests.conftest import unique_name

pytestmark = pytest.mark.integration


def test_document_is_openapi_3_with_the_pipeline_routes() -> None:
    doc = json.loads(API_GATEWAY_OPENAPI.read_text())
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    proxy = paths["/{proxy+}"]["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]
    assert proxy["type"] == "http_proxy" and proxy["httpMethod"] == "ANY"
    assert proxy["uri"] == "http://${stageVariables.proxyHost}/{proxy}"
    expected = {
        ("/streams", "get"): "ListStreams",
        ("/streams/{stream-name}", "post"): "CreateStream",
        ("/streams/{stream-name}", "get"): "DescribeStream",
        ("/streams/{stream-name}", "delete"): "DeleteStream",
        ("/streams/{stream-name}/record", "put"): "PutRecord",
        ("/streams/{stream-name}/records", "put"): "PutRecords",
    }
    for (path, method), action in expected.items():
        integ = paths[path][method]["x-amazon-apigateway-integration"]
        assert integ["type"] == "aws" and integ["uri"].endswith(f"kinesis:action/{action}")
        assert integ["credentials"] == "${KINESIS_ROLE_ARN}"


def test_reimport_replaces_the_api_and_never_duplicates(native_stack: Settings) -> None:
    service = ApiGatewayService(native_stack)
    first = native_stack.stack_state()["api_id"]
    service.up()
    service.up()
    client = boto3.client("apigateway", **native_stack.boto3_kwargs())
    assert find_rest_apis(client, native_stack.api_name) == [first]
    assert native_stack.stack_state()["api_id"] == first
    stage = client.get_stage(restApiId=first, stageName=native_stack.api_stage)
    assert stage["variables"]["proxyHost"] == f"127.0.0.1:{native_stack.rest_proxy_port}"


def _records(settings: Settings, stream: str) -> list[tuple[str, bytes]]:
    kinesis = boto3.client("kinesis", **settings.boto3_kwargs())
    out = []
    for shard in kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"]:
        it = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        out += [
            (r["PartitionKey"], r["Data"]) for r in kinesis.get_records(ShardIterator=it)["Records"]
        ]
    return out


def test_kinesis_actions_through_the_api(native_stack: Settings) -> None:
    base = native_stack.resolved_api_invoke_url()
    stream = f"streaming-{unique_name()}"
    with httpx.Client(base_url=base, timeout=30) as api:
        assert api.post(f"/streams/{stream}", json={"ShardCount": 1}).status_code == 200
        boto3.client("kinesis", **native_stack.boto3_kwargs()).get_waiter("stream_exists").wait(
            StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        assert stream in api.get("/streams").json()["StreamNames"]
        described = api.get(f"/streams/{stream}").json()["StreamDescription"]
        assert described["StreamName"] == stream
        row = {"index": 7, "title": 'say "hi"', "timestamp": "2020-08-28 03:52:47"}
        put = api.put(
            f"/streams/{stream}/record",
            json={"StreamName": stream, "Data": row, "PartitionKey": "k1"},
        )
        assert put.status_code == 200 and "SequenceNumber" in put.json()
        encoded = base64.b64encode(json.dumps(row).encode()).decode()
        assert (
            api.put(
                f"/streams/{stream}/record", json={"Data": encoded, "PartitionKey": "k2"}
            ).status_code
            == 200
        )
        many = api.put(
            f"/streams/{stream}/records",
            json={"records": [{"data": {"index": i}, "partition-key": f"p{i}"} for i in range(3)]},
        ).json()
        assert many["FailedRecordCount"] == 0 and len(many["Records"]) == 3
        records = _records(native_stack, stream)
        assert records[0][0] == "k1" and json.loads(records[0][1]) == row
        # the base64 form arrives as a JSON string holding the base64 text
        assert json.loads(base64.b64decode(json.loads(records[1][1]))) == row
        assert [json.loads(d) for _, d in records[2:]] == [{"index": i} for i in range(3)]
        assert api.delete(f"/streams/{stream}").status_code == 200

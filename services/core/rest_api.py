"""The REST API: one OpenAPI document imported (or overwritten) and deployed to a stage.

Used by the native stack against LocalStack and by ``aws_deploy`` against AWS; only the
stage variables (where the REST proxy lives) differ between runtimes.
"""

from __future__ import annotations

import logging
from typing import Any

from services.core.config_files import API_GATEWAY_OPENAPI, render, template_values
from services.core.settings import Settings

log = logging.getLogger(__name__)


def rendered_openapi(settings: Settings) -> str:
    """The OpenAPI document with this runtime's placeholders filled in."""
    return render(API_GATEWAY_OPENAPI.read_text(), template_values(settings), API_GATEWAY_OPENAPI)


def find_rest_apis(client: Any, name: str) -> list[str]:
    """Ids of every REST API with this name (oldest first)."""
    apis: list[dict[str, Any]] = []
    for page in client.get_paginator("get_rest_apis").paginate():
        apis += [a for a in page["items"] if a["name"] == name]
    return [a["id"] for a in sorted(apis, key=lambda a: a.get("createdDate", 0))]


def deploy_rest_api(
    client: Any, body: str, name: str, stage: str, variables: dict[str, str]
) -> str:
    """Import the API, or overwrite the one with this name, then deploy the stage."""
    ids = find_rest_apis(client, name)
    if ids:
        api_id = ids[0]
        for extra in ids[1:]:  # an interrupted earlier run may have left a second copy
            log.warning("deleting duplicate REST API %s (%s)", extra, name)
            client.delete_rest_api(restApiId=extra)
        client.put_rest_api(restApiId=api_id, mode="overwrite", body=body.encode())
    else:
        api_id = client.import_rest_api(body=body.encode())["id"]
    client.create_deployment(restApiId=api_id, stageName=stage, variables=variables)
    return str(api_id)


def invoke_url(settings: Settings, api_id: str) -> str:
    """The stage's invoke URL; LocalStack's path form works without DNS."""
    if settings.aws_endpoint_url:
        return f"{settings.aws_endpoint_url}/_aws/execute-api/{api_id}/{settings.api_stage}"
    return f"https://{api_id}.execute-api.{settings.aws_region}.amazonaws.com/{settings.api_stage}"

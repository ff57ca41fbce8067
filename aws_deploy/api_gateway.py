"""API Gateway: the same OpenAPI document the local runtimes import, deployed to a stage.

Only the placeholders (region, Kinesis role) and the stage variables (where the REST proxy
listens) differ from LocalStack. The idempotence key is the API name plus the SHA-256 of the
rendered document, kept in the stage's description (deployments can't be read back as the
document they came from); stage variables are compared one by one and patched in place.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from aws_deploy.context import DeployContext, Step, gone
from aws_deploy.plan import Action, Change, noop
from aws_deploy.s3 import sha256
from aws_deploy.state import Record
from services.core.config_files import API_GATEWAY_OPENAPI, render, template_values
from services.core.rest_api import deploy_rest_api, find_rest_apis, invoke_url

NAME = "api_gateway"
DESCRIPTION_PREFIX = "pinpipe openapi sha256:"


def rendered_document(ctx: DeployContext) -> str:
    """The shared OpenAPI document with this target's values."""
    values = template_values(ctx.settings) | {"KINESIS_ROLE_ARN": ctx.kinesis_role_arn}
    return render(API_GATEWAY_OPENAPI.read_text(), values, API_GATEWAY_OPENAPI)


def stage_variables(ctx: DeployContext) -> dict[str, str]:
    """Where the ``{proxy+}`` integration forwards: the EC2 instance running the proxy."""
    proxy = ctx.target.rest_proxy
    return {"proxyHost": f"{proxy.public_dns}:{proxy.port}"}


def _stage(client: Any, api_id: str, stage: str) -> dict[str, Any] | None:
    try:
        return dict(client.get_stage(restApiId=api_id, stageName=stage))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NotFoundException":
            return None
        raise


def plan(ctx: DeployContext) -> list[Change]:
    """Import, overwrite, redeploy or repoint the API; no-op when all matches."""
    client = ctx.clients("apigateway")
    s = ctx.settings
    body = rendered_document(ctx)
    digest = sha256(body.encode())
    variables = stage_variables(ctx)
    ids = find_rest_apis(client, s.api_name)

    def deploy() -> str:
        api_id = deploy_rest_api(client, body, s.api_name, s.api_stage, variables)
        if not ids:
            ctx.state.record(NAME, "rest api", api_id)
        client.update_stage(
            restApiId=api_id,
            stageName=s.api_stage,
            patchOperations=[
                {"op": "replace", "path": "/description", "value": DESCRIPTION_PREFIX + digest}
            ],
        )
        ctx.outputs["api_invoke_url"] = invoke_url(s, api_id)
        return f"deployed to stage {s.api_stage}"

    label = f"{s.api_name} (stage {s.api_stage})"
    if not ids:
        return [Change(NAME, "rest api", label, Action.CREATE, f"sha256 {digest[:12]}", deploy)]
    api_id = ids[0]
    ctx.outputs["api_invoke_url"] = invoke_url(s, api_id)
    stage = _stage(client, api_id, s.api_stage)
    if stage is None:
        return [Change(NAME, "rest api", label, Action.UPDATE, "stage missing", deploy)]
    deployed = stage.get("description", "").removeprefix(DESCRIPTION_PREFIX)
    if deployed != digest or len(ids) > 1:
        detail = f"document sha256 {deployed[:12] or 'unknown'} → {digest[:12]}"
        return [Change(NAME, "rest api", label, Action.UPDATE, detail, deploy)]
    current = stage.get("variables", {})
    differ = {k: v for k, v in variables.items() if current.get(k) != v}
    if not differ:
        return [noop(NAME, "rest api", label, f"sha256 {digest[:12]}")]

    def repoint() -> str:
        client.update_stage(
            restApiId=api_id,
            stageName=s.api_stage,
            patchOperations=[
                {"op": "replace", "path": f"/variables/{k}", "value": v} for k, v in differ.items()
            ],
        )
        return "stage variables updated"

    detail = ", ".join(f"{k} {current.get(k, '(unset)')} → {v}" for k, v in differ.items())
    return [Change(NAME, "rest api", label, Action.UPDATE, detail, repoint)]


def destroy(ctx: DeployContext, record: Record) -> Change:
    """Delete the REST API ``apply`` created (never one found in place)."""
    client = ctx.clients("apigateway")
    try:
        name = client.get_rest_api(restApiId=record.id)["name"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NotFoundException":
            raise
        return gone(ctx, record, "rest api", record.id)

    def delete() -> str:
        client.delete_rest_api(restApiId=record.id)
        ctx.state.forget(record)
        return "deleted"

    return Change(NAME, "rest api", record.id, Action.DELETE, name, delete)


STEP = Step(
    NAME,
    "the REST API and its stage",
    ("rest_proxy.public_dns",),
    plan,
    destroy,
    local=True,
)

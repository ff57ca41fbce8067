"""API Gateway inside LocalStack: the REST API imported and deployed at ``stack up``."""

from __future__ import annotations

import json

import boto3
from botocore.exceptions import ClientError

from services.core.rest_api import deploy_rest_api, find_rest_apis, invoke_url, rendered_openapi
from services.stack.base import NativeService, ServiceStatus


class ApiGatewayService(NativeService):
    """Not a process of its own: provisioning inside LocalStack, recorded in stack.json."""

    name = "apigateway"

    @property
    def port(self) -> int:
        return self.settings.localstack_port

    def _client(self):  # type: ignore[no-untyped-def]
        return boto3.client("apigateway", **self.settings.boto3_kwargs())

    def endpoint(self) -> str:
        return self.settings.resolved_api_invoke_url() or "-"

    def healthy(self) -> bool:
        api_id = self.settings.stack_state().get("api_id")
        if not api_id:
            return False
        try:
            self._client().get_stage(restApiId=api_id, stageName=self.settings.api_stage)
        except ClientError:
            return False
        return True

    def launch(self) -> None:
        """Nothing to start: the API lives in LocalStack."""

    def up(self) -> str:
        self.provision()
        return "imported and deployed"

    def provision(self) -> None:
        s = self.settings
        api_id = deploy_rest_api(
            self._client(),
            rendered_openapi(s),
            s.api_name,
            s.api_stage,
            {"proxyHost": f"{s.bind_host}:{s.rest_proxy_port}"},
        )
        state = s.stack_state()
        state.update(
            {"api_id": api_id, "api_invoke_url": invoke_url(s, api_id), "api_stage": s.api_stage}
        )
        s.state_dir.mkdir(parents=True, exist_ok=True)
        s.stack_state_file.write_text(json.dumps(state, indent=2))

    def down(self) -> bool:
        """The API goes with LocalStack; forget what was recorded about it."""
        state = self.settings.stack_state()
        had = bool(state.pop("api_id", None))
        state.pop("api_invoke_url", None)
        if self.settings.stack_state_file.exists():
            self.settings.stack_state_file.write_text(json.dumps(state, indent=2))
        return had

    def status(self) -> ServiceStatus:
        up, why = self._checked_health()
        ids = find_rest_apis(self._client(), self.settings.api_name) if up else []
        detail = f"API {ids[0]}, stage {self.settings.api_stage}" if ids else why
        return ServiceStatus(self.name, "up" if up else "down", self.endpoint(), None, True, detail)

"""The sandbox's own endpoints: read and replace the knobs, read and reset the traffic counters, health."""

from __future__ import annotations

import json

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from providers.sandbox.config import SandboxConfig
from providers.sandbox.state import SandboxState


class AdminRoutes:
    def __init__(self, state: SandboxState) -> None:
        self._state = state

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/config", self.get_config, methods=["GET"]),
            Route("/_sandbox/config", self.put_config, methods=["PUT"]),
            Route("/_sandbox/stats", self.stats, methods=["GET"]),
            Route("/_sandbox/reset", self.reset, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
        ]

    async def get_config(self, request: Request) -> JSONResponse:
        return JSONResponse(self._state.config.model_dump(mode="json"))

    async def put_config(self, request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"detail": "body is not JSON"}, status_code=400)
        try:
            config = SandboxConfig.model_validate(body)
        except ValidationError as exc:
            return JSONResponse({"detail": json.loads(exc.json(include_url=False))}, status_code=422)
        self._state.replace(config)
        return JSONResponse(config.model_dump(mode="json"))

    async def stats(self, request: Request) -> JSONResponse:
        return JSONResponse(self._state.stats.snapshot())

    async def reset(self, request: Request) -> Response:
        self._state.reset()
        return Response(status_code=204)

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

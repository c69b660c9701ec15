"""The sandbox as one ASGI app: every sandboxed provider under its source label, behind the knobs."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import ASGIApp

from providers.sandbox.admin import AdminRoutes
from providers.sandbox.arraybobo import ArrayBoboRoutes
from providers.sandbox.config import SandboxConfig
from providers.sandbox.instagram import InstagramWorld
from providers.sandbox.knobs import Knobs
from providers.sandbox.state import SandboxState


def create_app(config: SandboxConfig) -> ASGIApp:
    state = SandboxState(config)
    instagram = InstagramWorld()
    routes = [*AdminRoutes(state).routes(), ArrayBoboRoutes(instagram).mount()]
    return Knobs(Starlette(routes=routes), state)

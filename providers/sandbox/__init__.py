"""The sandbox: a real HTTP server answering the providers' real paths in their real shapes.

Each provider lives under its source label (``/rapidapi-arraybobo/ig/info_username/``), so
``BEAT_PROVIDER_BASE_URLS`` can point a source at ``<sandbox url>/<label>``. Answers are
deterministic per entity; latency, injected 500s, per-credential rate limits and hanging
paths are knobs (``SandboxConfig``, ``BEAT_SANDBOX_*``, or ``PUT /_sandbox/config``).
"""

from providers.sandbox.app import create_app
from providers.sandbox.config import RateLimit, SandboxConfig
from providers.sandbox.server import SandboxServer, run

__all__ = ["RateLimit", "SandboxConfig", "SandboxServer", "create_app", "run"]

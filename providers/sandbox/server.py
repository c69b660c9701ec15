"""Serving the sandbox: blocking in the foreground, or on a free port in a background thread for tests."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn

from providers.sandbox.app import create_app
from providers.sandbox.config import SandboxConfig

# Hanging requests end when their client leaves; this bounds the wait for clients that stay.
SHUTDOWN_GRACE = 2
START_TIMEOUT = 10.0


def run(host: str, port: int, config: SandboxConfig) -> None:
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
    )


class SandboxServer:
    """``with SandboxServer(config) as sandbox: ... sandbox.url ...``"""

    def __init__(self, config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._config = config or SandboxConfig()
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return f"http://{self._host}:{self._port}"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        # log_config=None leaves the embedding process's logging alone.
        config = uvicorn.Config(
            create_app(self._config),
            host=self._host,
            port=self._port,
            access_log=False,
            lifespan="off",
            log_config=None,
            log_level="warning",
            timeout_graceful_shutdown=SHUTDOWN_GRACE,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="beat-sandbox", daemon=True)
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(f"the sandbox did not start on {self._host}:{self._port}")
            time.sleep(0.01)
        # With port 0 the kernel picked the port; the listening socket knows which.
        self._port = server.servers[0].sockets[0].getsockname()[1]
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(SHUTDOWN_GRACE + 5.0)
        self._server = self._thread = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

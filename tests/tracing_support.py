"""An OTLP/HTTP collector on loopback for the tests: it keeps every body a process exports to it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SpanCollector:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                collector.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def spans(self) -> list[dict[str, Any]]:
        """Every span exported so far, each with its service's name under ``service``."""
        found = []
        for body in self.bodies:
            for resource in json.loads(body)["resourceSpans"]:
                names = [
                    a["value"]["stringValue"] for a in resource["resource"]["attributes"] if a["key"] == "service.name"
                ]
                for scope in resource["scopeSpans"]:
                    found.extend({**span, "service": names[0] if names else None} for span in scope["spans"])
        return found

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

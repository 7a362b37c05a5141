"""Real receivers on loopback for the tests that send things out (webhooks)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A loopback HTTP server that records POSTed JSON; can fail or stall on demand."""

    def __init__(self) -> None:
        self.got: list[dict] = []
        self.headers: list[dict] = []
        self.fail_next = 0  # answer 500 to this many requests first
        self.gate = threading.Event()  # cleared: requests wait (a slow receiver)
        self.gate.set()
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.gate.wait(10)
                if outer.fail_next > 0:
                    outer.fail_next -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                with outer.arrived:
                    outer.got.append(json.loads(body))
                    outer.headers.append({**dict(self.headers), "_body": body})
                    outer.arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, n: int, timeout: float = 20.0) -> list[dict]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.got) >= n, timeout)
        return self.got

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()

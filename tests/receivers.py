"""Real counterparts on loopback for the tests: a webhook receiver, an MQTT broker and
subscriber (mosquitto), and an HTTP camera serving MJPEG."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


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


class MjpegServer:
    """A loopback HTTP camera: serves a video file's frames as an MJPEG stream
    (``multipart/x-mixed-replace``) at the file's pace, looping; ``cut()`` drops every open
    connection (a camera that goes away) and ``down`` refuses new ones while it is set."""

    def __init__(self, video, fps: float = 10.0) -> None:
        import cv2

        cap = cv2.VideoCapture(str(video))
        self.jpegs: list[bytes] = []
        while True:
            ok, image = cap.read()
            if not ok:
                break
            self.jpegs.append(
                cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            )
        cap.release()
        assert self.jpegs, f"no frames in {video}"
        self.fps = fps
        self.sent = 0  # frames sent, over all connections
        self.connections = 0  # connections served (a reconnect adds one)
        self.down = threading.Event()
        self._generation = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                import time

                if outer.down.is_set():
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.connections += 1
                generation = outer._generation
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                start = time.monotonic()
                k = 0
                try:
                    while generation == outer._generation:
                        jpeg = outer.jpegs[k % len(outer.jpegs)]
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            + f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        outer.sent += 1
                        k += 1
                        ahead = start + k / outer.fps - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/stream.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def cut(self) -> None:
        """End every stream being served now (the camera drops its viewers)."""
        self._generation += 1

    def close(self) -> None:
        self.cut()
        self.server.shutdown()
        self.server.server_close()


# -- MQTT: a real mosquitto broker and a subscriber -------------------------------------------

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, tmp_path, port: int) -> None:
        if MOSQUITTO is None:
            if os.environ.get("CI") == "true":
                pytest.fail("mosquitto is missing in CI (scripts/test.sh installs it)")
            pytest.skip("no mosquitto: apt-get install mosquitto (scripts/test.sh does it as root)")
        self.port = port
        conf = tmp_path / f"mosquitto-{port}.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Listener:
    """A subscriber that records (topic, payload, retained) for everything under ``#``."""

    def __init__(self, port: int) -> None:
        self.got: list[tuple[str, str, bool]] = []
        self.cond = threading.Condition()
        paho = pytest.importorskip("paho.mqtt.client", reason="pip install 'facesearch[mqtt]'")

        c = paho.Client(paho.CallbackAPIVersion.VERSION2)
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.subscribe("#", qos=1)
        c.loop_start()
        self.client = c

    def _on_message(self, client, userdata, msg) -> None:
        with self.cond:
            self.got.append((msg.topic, msg.payload.decode(), bool(msg.retain)))
            self.cond.notify_all()

    def wait(self, pred, timeout: float = 15.0):
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self.got), timeout), self.got
        return self.got

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

"""Runs a compose health-check command against a local HTTP server that answers
/readyz with a chosen status, to prove the probe passes on 200 and fails otherwise.
Used by check_compose.py; everything stays on 127.0.0.1."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = b"ready" if self.status == 200 else b"not ready: waiting for checks"
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # The probe hangs up after the status line; the reset that causes is expected.
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_probe(command: list[str], env: dict[str, str], timeout: float = 15) -> int:
    try:
        return subprocess.run(command, env=env, capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return -1


def probe_outcomes(command: list[str], base_env: dict[str, str], listen_host: str) -> dict[str, int]:
    """Exit codes of the probe against a server answering 200, one answering 503, and
    a port nobody listens on. The probe finds the port through
    ADJOIN__METRICS__LISTEN, as in the container."""
    outcomes: dict[str, int] = {}
    for status in (200, 503):
        handler = type("Handler", (_Handler,), {"status": status})
        server = _QuietServer(("127.0.0.1", 0), handler)
        port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            env = {**base_env, "ADJOIN__METRICS__LISTEN": f"{listen_host}:{port}"}
            outcomes[str(status)] = run_probe(command, env)
        finally:
            server.shutdown()
            server.server_close()
    env = {**base_env, "ADJOIN__METRICS__LISTEN": f"{listen_host}:{free_port()}"}
    outcomes["closed"] = run_probe(command, env)
    return outcomes

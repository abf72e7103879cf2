"""A web app of ours under uvicorn in its own process on 127.0.0.1: startable, stoppable, killable."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_job(client: Any, job: str, timeout_s: float = 120) -> dict[str, Any]:
    """Poll the demo's ``/api/jobs/<job>`` through ``client`` (a TestClient) until it is done or failed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state: dict[str, Any] = client.get(f"/api/jobs/{job}").json()
        if state["state"] in ("done", "error"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job} did not finish in {timeout_s} s")


def serve_code(factory: str, call: str = "create_app(sys.argv[1])") -> str:
    """``python -c`` source that serves ``call`` (from module ``factory``) on the port in ``sys.argv[2]``."""
    return (
        f"import sys, uvicorn; from {factory} import create_app; "
        f"uvicorn.run({call}, host='127.0.0.1', port=int(sys.argv[2]), access_log=False, log_level='warning')"
    )


class ServedApp:
    """Runs ``serve_code`` with ``argument`` on a free port; ``start`` waits until "/" answers."""

    def __init__(self, code: str, argument: object, timeout_s: float = 60) -> None:
        self.code, self.argument, self.timeout_s = code, str(argument), timeout_s
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServedApp:
        self.proc = subprocess.Popen([sys.executable, "-c", self.code, self.argument, str(self.port)])
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}") from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start within {self.timeout_s:.0f} s")

    def stop(self, hard: bool = False) -> None:
        """Terminate (or, ``hard``, SIGKILL, as a crash would) and wait."""
        if self.proc is not None and self.proc.poll() is None:
            if hard:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None

"""Serving the Streamlit dashboard: the exact ``streamlit run`` command, and a server for tests/tools.

The dashboard serves on 127.0.0.1 by default (nothing is exposed to the network unless the user
asks with ``--host``), never shows a viewer a traceback (``--client.showErrorDetails none``), never
phones home (``--browser.gatherUsageStats false``) and reads studies only under ``--studies DIR``. Streamlit is started as a subprocess with a list of arguments (no
shell), so no option value is ever interpreted by a shell.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Iterator


MAIN_SCRIPT = Path(__file__).resolve().parent / "main.py"
#: Streamlit's client.showErrorDetails: "none" shows a viewer no exception text or traceback (the
#: pages show their own error boxes; app/main.py sets the same when run with plain `streamlit run`).
SHOW_ERROR_DETAILS = "none"


def streamlit_command(port: int, host: str, studies: Path) -> list[str]:
    """The exact ``streamlit run`` argument list the command executes (tests read it too)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(MAIN_SCRIPT),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--client.showErrorDetails", SHOW_ERROR_DETAILS,
        "--", "--studies", str(studies),
    ]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(studies: Path, *, port: int | None = None, host: str = "127.0.0.1", timeout: float = 60.0,
                log: IO | None = None, env: dict | None = None) -> Iterator[str]:
    """Serve the dashboard in a subprocess (exactly as `scaleplan app`), wait until Streamlit's health
    endpoint answers, yield its URL, and always stop the server's whole process group afterwards.
    Used by the end-to-end test and tools/screenshots.py."""
    port = port or free_port(host)
    proc = subprocess.Popen(streamlit_command(port, host, Path(studies)), cwd=MAIN_SCRIPT.parents[1],
                            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    url = f"http://{host}:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read().strip() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the dashboard did not start within {timeout:.0f} s (exit code {proc.poll()})")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

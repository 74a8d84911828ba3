"""Shared test helpers: paths to ../shared/data, the e2e skip rule, running the CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
REQUIRE_E2E = os.environ.get("SCALEPLAN_REQUIRE_E2E") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip on a user's machine; fail in CI (SCALEPLAN_REQUIRE_E2E=1)."""
    if REQUIRE_E2E:
        pytest.fail(f"{reason} (SCALEPLAN_REQUIRE_E2E=1 turns this skip into a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        skip_or_fail(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def run_cli(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 600,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `scaleplan ARGS` in a subprocess (the real entry point), capturing output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "scaleplan.cli", *map(str, args)],
        cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout, env=full_env,
    )


@pytest.fixture
def cli():
    return run_cli

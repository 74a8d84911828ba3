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


TINY_HPARAMS = {"parameterization": "mup", "base_width": 32, "base_depth": 1, "base_head_dim": 8, "lr": 0.01,
                "init_std": 0.02, "alpha_in": 1.0, "alpha_out": 1.0, "warmup_frac": 0.05, "weight_decay": 0.0,
                "vocab_size": 320}


def write_tiny_hparams(path: Path, **over) -> Path:
    """An hparams.yaml for toy ladders (μP at base width 32, one layer, head size 8), ``over`` applied."""
    import yaml

    path.write_text(yaml.safe_dump({**TINY_HPARAMS, **over}))
    return path


def tiny_proxy_inputs(root: Path) -> tuple[Path, Path]:
    """``root/data`` (0.3 MB of byte-tokenized stdlib text) and ``root/hparams.yaml`` for toy ladders."""
    data = root / "data"
    r = run_cli("data", "prepare", "--out", data, "--tokenizer", "bytes", "--max-mb", "0.3")
    assert r.returncode == 0, r.stderr
    return data, write_tiny_hparams(root / "hparams.yaml")


@pytest.fixture
def cli():
    return run_cli

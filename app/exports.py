"""Build the launch files of a plan in memory for the dashboard's download buttons.

The exporters (planner.export) write into a folder; we let them write into a private temporary
folder, read the files back and return them (or a zip made in memory). Nothing is written under
the studies root.
"""
from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

TRAINERS = {"megatron": "Megatron-LM", "torchtitan": "torchtitan", "hf": "Hugging Face"}
SHORT = {"megatron": "Megatron", "torchtitan": "torchtitan", "hf": "HF config"}
MAIN_FILE = {"megatron": "launch.sh", "torchtitan": "run.sh", "hf": "config.json"}


def _export_into(plan, trainer: str, out: Path):
    """Call the library exporter for ``trainer`` (planner.export), writing into ``out``."""
    from planner.export import export

    return export(plan, trainer, out, command="scaleplan app (dashboard download)")


def export_files(plan, trainer: str) -> dict[str, bytes]:
    """``{relative path: content}`` of the files the exporter for ``trainer`` writes for ``plan``."""
    if trainer not in TRAINERS:
        raise ValueError(f"unknown trainer {trainer!r}")
    with tempfile.TemporaryDirectory(prefix="scaleplan-export-") as tmp:
        out = Path(tmp) / trainer
        _export_into(plan, trainer, out)
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def zip_bytes(files: dict[str, bytes], folder: str) -> bytes:
    """A zip (in memory) holding ``files`` under ``folder/``; shell scripts keep their exec bit."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name.endswith(".sh") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()

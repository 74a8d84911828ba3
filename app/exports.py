"""The launch files of a plan, in memory, for the dashboard's download buttons.

The exporters render ``{filename: text}`` (planner.export.render); nothing is written to disk.
"""
from __future__ import annotations

import io
import zipfile

TRAINERS = {"megatron": "Megatron-LM", "torchtitan": "torchtitan", "hf": "Hugging Face"}
SHORT = {"megatron": "Megatron", "torchtitan": "torchtitan", "hf": "HF config"}
MAIN_FILE = {"megatron": "launch.sh", "torchtitan": "run.sh", "hf": "config.json"}
COMMAND = "scaleplan app (dashboard download)"


def export_files(plan, trainer: str) -> dict[str, bytes]:
    """``{file name: content}`` of the files the exporter for ``trainer`` makes for ``plan``."""
    from planner.export import render

    if trainer not in TRAINERS:
        raise ValueError(f"unknown trainer {trainer!r}")
    return {name: text.encode("utf-8") for name, text in sorted(render(plan, trainer, command=COMMAND).items())}


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

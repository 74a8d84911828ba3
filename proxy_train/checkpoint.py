"""Training checkpoints (``ckpt.pt``): written atomically, read back only for the same config.

Conventions: a checkpoint is a state dict of tensors, containers and scalars plus the run's
``config_hash``; written with ``torch.save`` to a temporary sibling and renamed (a killed writer
leaves the old file), read with ``torch.load(weights_only=True)`` (no pickled code). A checkpoint
of another config, or one that cannot be read, is ignored: the run starts over instead of crashing.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch


def clone_state(obj):
    """Deep copy of a state dict made of tensors, containers and scalars (no model deepcopy)."""
    if torch.is_tensor(obj):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: clone_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(clone_state(v) for v in obj)
    return obj


def save_checkpoint(path: Path, state: dict, config_hash: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({**state, "config_hash": config_hash}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, config_hash: str, device: torch.device) -> dict | None:
    """The state saved at ``path`` for ``config_hash``, or None (missing, corrupt or another config)."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception:  # a corrupt checkpoint: start over rather than crash
        return None
    if state.get("config_hash") != config_hash:
        return None
    return state

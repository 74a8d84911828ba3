"""Plain-format artefact I/O: atomic writes (nothing half-written) and friendly reads."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from planner.errors import UserError


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and dataclass-like objects into JSON-safe values."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        np = None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if np is not None:
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            obj = float(obj)
        elif isinstance(obj, np.bool_):
            return bool(obj)
        elif isinstance(obj, np.ndarray):
            return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def to_json(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(_jsonable(obj), indent=indent, sort_keys=False)


def to_yaml(obj: Any) -> str:
    return yaml.safe_dump(_jsonable(obj), sort_keys=False, allow_unicode=True)


def _check_writable_dir(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise UserError(f"cannot write {path}: {parent} is a file, not a folder; choose another output path")
    check_creatable(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create folder {parent} ({e.strerror}); choose a writable output path") from None
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write into {parent} (permission denied); choose a writable output path")


def ensure_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create folder ``path`` (and parents); UserError when a part of it is a file or not writable."""
    path = check_creatable(path, what)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {what} {path} ({e.strerror}); choose another path") from None
    return path


def check_creatable(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Fail early (UserError, nothing created) when folder ``path`` could not be made later."""
    path = Path(path)
    existing = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not existing.is_dir():
        raise UserError(f"cannot create {what} {path}: {existing} is a file, not a folder; choose another path")
    if existing != path and not os.access(existing, os.W_OK):
        raise UserError(f"cannot create {what} {path}: {existing} is not writable; choose another path")
    return path


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file + rename, so a reader never sees half a file."""
    path = Path(path)
    _check_writable_dir(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent or "."))
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write(path, to_json(obj) + "\n")


def write_yaml(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write(path, to_yaml(obj))


def _read_text(path: Path, what: str, kind: str) -> str:
    """The file's text, or a UserError saying it is missing, a folder or not UTF-8."""
    if not path.exists():
        raise UserError(f"{what} not found: {path}; check the path")
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; pass the file inside it")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not UTF-8 text; pass a {kind} file") from None


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    path = Path(path)
    text = _read_text(path, what, "JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{what} {path} is not valid JSON (line {e.lineno}: {e.msg}); fix or regenerate it") from None


def read_yaml(path: str | os.PathLike, what: str = "YAML file") -> Any:
    path = Path(path)
    text = _read_text(path, what, "YAML")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        msg = str(e).splitlines()[0] if str(e) else "parse error"
        raise UserError(f"{what} {path} is not valid YAML ({msg}); fix or regenerate it") from None

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
    system = _system_folder(existing)
    if system:
        raise UserError(f"cannot create {what} {path}: {system} is a kernel pseudo-filesystem, not storage; "
                        "choose another path")
    return path


#: Kernel pseudo-filesystems: writable by root as far as os.access knows, yet nothing can be created there.
_SYSTEM_ROOTS = ("/proc", "/sys", "/dev")


def _system_folder(existing: Path) -> str | None:
    """The pseudo-filesystem root ``existing`` lies in (after resolving links), else None."""
    real = os.path.realpath(existing)
    return next((r for r in _SYSTEM_ROOTS if real == r or real.startswith(r + "/")), None)


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


#: Limits of the readers: artefacts are kilobytes to a few megabytes (fit.json with its bootstrap
#: samples is the largest); anything beyond is refused before it is parsed.
MAX_READ_BYTES = 64 * 2**20
#: YAML: nodes after alias expansion (a plan has ~600) and nesting depth. A "billion laughs"
#: document expands a few aliases into billions of nodes; counting them on the composed graph
#: (shared nodes counted once per use, without building anything) refuses it in microseconds.
MAX_YAML_NODES = 100_000
MAX_NESTING = 100


def _read_text(path: Path, what: str, kind: str, max_bytes: int | None = None) -> str:
    """The file's text, or a UserError saying it is missing, a folder, too large (``max_bytes``,
    default MAX_READ_BYTES) or not UTF-8."""
    max_bytes = max_bytes or MAX_READ_BYTES
    if not path.exists():
        raise UserError(f"{what} not found: {path}; check the path")
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; pass the file inside it")
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise UserError(f"cannot read {what} {path} ({e.strerror}); check the path and its permissions") from None
    if len(raw) > max_bytes:
        raise UserError(f"{what} {path} is larger than {max_bytes:,} bytes; pass the {kind} file scaleplan wrote")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not UTF-8 text; pass a {kind} file") from None


def _too_nested(what: str, path: Path, kind: str) -> UserError:
    return UserError(f"{what} {path} is nested too deeply to read; pass the {kind} file scaleplan wrote")


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """The JSON value in ``path``; UserError when it is missing, too large, too deeply nested or not JSON."""
    path = Path(path)
    text = _read_text(path, what, "JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{what} {path} is not valid JSON (line {e.lineno}: {e.msg}); fix or regenerate it") from None
    except RecursionError:
        raise _too_nested(what, path, "JSON") from None
    except ValueError as e:  # e.g. an integer beyond Python's 4300-digit limit
        raise UserError(f"{what} {path} holds a value JSON cannot be read into ({str(e)[:80]}); "
                        "fix or regenerate it") from None


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that checks the composed document (:func:`_check_yaml_graph`) before building it."""

    def construct_document(self, node):
        _check_yaml_graph(node)
        return super().construct_document(node)


class _YAMLTooLarge(Exception):
    pass


def _check_yaml_graph(root) -> None:
    """Raise _YAMLTooLarge when the document, with every alias expanded, would exceed
    MAX_YAML_NODES nodes or MAX_NESTING levels, or when an alias refers to its own ancestor."""
    seen: dict[int, tuple[int, int]] = {}  # node -> (expanded size, height)
    deep = f"nested more than {MAX_NESTING} levels deep"

    def size(node, depth: int, open_nodes: set[int]) -> tuple[int, int]:
        key = id(node)
        if key in seen:
            if depth + seen[key][1] > MAX_NESTING:
                raise _YAMLTooLarge(deep)
            return seen[key]
        if depth > MAX_NESTING:
            raise _YAMLTooLarge(deep)
        if key in open_nodes:
            raise _YAMLTooLarge("an alias refers to the node that contains it")
        open_nodes.add(key)
        children = node.value if isinstance(node, yaml.SequenceNode) else (
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
        total, height = 1, 0
        for child in children:
            n, h = size(child, depth + 1, open_nodes)
            total, height = total + n, max(height, h + 1)
            if total > MAX_YAML_NODES:
                raise _YAMLTooLarge(f"more than {MAX_YAML_NODES:,} values once its aliases are expanded")
        open_nodes.discard(key)
        seen[key] = (total, height)
        return seen[key]

    size(root, 0, set())


def read_yaml(path: str | os.PathLike, what: str = "YAML file") -> Any:
    """The YAML value in ``path`` (safe tags only; aliases allowed only while the expanded document
    stays under MAX_YAML_NODES values and MAX_NESTING levels); UserError otherwise."""
    path = Path(path)
    return parse_yaml(_read_text(path, what, "YAML"), f"{what} {path}")


def parse_yaml(text: str, what: str, fix: str = "fix or regenerate it") -> Any:
    """The YAML value of ``text`` (e.g. typed in the dashboard) under :func:`read_yaml`'s rules;
    ``what`` names it in the UserError, ``fix`` says what to do."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except _YAMLTooLarge as e:
        raise UserError(f"{what} is refused: {e}; {fix}") from None
    except RecursionError:
        raise UserError(f"{what} is nested too deeply to read; {fix}") from None
    except yaml.YAMLError as e:
        msg = str(e).splitlines()[0] if str(e) else "parse error"
        raise UserError(f"{what} is not valid YAML ({msg}); {fix}") from None

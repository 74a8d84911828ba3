"""Corpora for proxy training: documents in a fixed order, capped, split into train/val by id.

Conventions:
* A document is (id, text). Sources: ``stdlib`` (the running Python's standard-library sources:
  ``sysconfig`` "stdlib" path, ``*.py`` files in sorted order, ``site-packages`` and test folders
  left out; no download), a .txt/.md/.py/.rst/.jsonl/.parquet file or a folder of them (sorted
  paths; .jsonl lines and .parquet rows are one document each, id ``path#index``), or ``hf:NAME``
  (a streamed Hugging Face dataset, train split).
* Split: a document goes to validation iff the first 8 bytes of sha256(its id) read as an
  integer are below ``val_frac * 2^64``: deterministic, document-level, independent of order.
* Size cap (``max_mb``, MiB of UTF-8 text): documents are taken in order until the next one would
  pass the cap (the first document is always taken).
"""
from __future__ import annotations

import hashlib
import json
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from planner.errors import UserError

TEXT_SUFFIXES = (".txt", ".md", ".py", ".rst", ".jsonl", ".parquet")


def stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
    files = [p for p in root.rglob("*.py") if not (set(p.relative_to(root).parts[:-1]) & skip)]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        raise UserError(f"cannot read corpus file {path} ({e.strerror}); pass a readable text file") from None


def _jsonl_docs(path: Path, text_field: str, rel: str) -> Iterator[tuple[str, str]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path} line {i + 1} is not valid JSON ({e.msg}); fix the file") from None
            except (RecursionError, ValueError):  # nesting beyond the recursion limit, a 5000-digit number
                raise UserError(f"{path} line {i + 1} is nested too deeply or holds a number JSON cannot be read "
                                "into; fix the file") from None
            if not isinstance(obj, dict) or text_field not in obj:
                raise UserError(f"{path} line {i + 1} has no field {text_field!r}; pass --text-field NAME")
            yield f"{rel}#{i}", str(obj[text_field])


def _parquet_docs(path: Path, text_field: str, rel: str) -> Iterator[tuple[str, str]]:
    import pyarrow.parquet as pq
    try:
        table = pq.read_table(path, columns=[text_field])
    except Exception as e:  # pyarrow raises several types for a missing column
        raise UserError(f"cannot read column {text_field!r} from {path} ({e}); pass --text-field NAME") from None
    for i, text in enumerate(table.column(text_field).to_pylist()):
        if text:
            yield f"{rel}#{i}", str(text)


def _docs_from_file(path: Path, text_field: str, rel: str) -> Iterator[tuple[str, str]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _jsonl_docs(path, text_field, rel)
    elif suffix == ".parquet":
        yield from _parquet_docs(path, text_field, rel)
    else:
        yield rel, _read_text(path)


def _hf_docs(name: str, text_field: str) -> Iterator[tuple[str, str]]:
    try:
        import datasets  # noqa: F401  (optional dependency)
    except ImportError:
        raise UserError("source hf:NAME needs the `datasets` package; `pip install datasets` "
                        "or pass a local .txt/.jsonl/.parquet file or folder") from None
    try:
        ds = datasets.load_dataset(name, split="train", streaming=True)
    except Exception as e:
        raise UserError(f"cannot load Hugging Face dataset {name!r} ({e}); check the name") from None
    for i, row in enumerate(ds):
        if text_field not in row:
            raise UserError(f"dataset {name!r} has no field {text_field!r}; pass --text-field NAME")
        yield f"{name}#{i}", str(row[text_field])


def iter_documents(source: str, text_field: str = "text") -> Iterator[tuple[str, str]]:
    """Yield (document id, text) in a fixed order for ``stdlib``, a file/folder, or ``hf:NAME``."""
    if source == "stdlib":
        root = Path(sysconfig.get_paths()["stdlib"])
        for p in stdlib_files():
            yield p.relative_to(root).as_posix(), _read_text(p)
        return
    if source.startswith("hf:"):
        yield from _hf_docs(source[3:], text_field)
        return
    path = Path(source)
    if not path.exists():
        raise UserError(f"corpus not found: {path}; pass stdlib, a .txt/.jsonl/.parquet file or folder, or hf:NAME")
    if path.is_file():
        yield from _docs_from_file(path, text_field, path.name)
        return
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    if not files:
        raise UserError(f"folder {path} has no {'/'.join(TEXT_SUFFIXES)} files; point --source at text files")
    for p in files:
        yield from _docs_from_file(p, text_field, p.relative_to(path).as_posix())


def is_val_doc(doc_id: str, val_frac: float) -> bool:
    h = int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big")
    return h < val_frac * 2**64


@dataclass
class Corpus:
    """The documents read (in order), which go to validation, their UTF-8 size and content hash."""
    docs: list[tuple[str, str]]
    val_mask: list[bool]
    n_bytes: int
    sha256: str

    @property
    def train_texts(self) -> list[str]:
        return [t for (_, t), v in zip(self.docs, self.val_mask) if not v]


def read_corpus(source: str, *, text_field: str = "text", max_mb: float | None = None,
                val_frac: float = 0.05) -> Corpus:
    """Documents of ``source`` up to ``max_mb`` MiB, split by :func:`is_val_doc` (see the module docstring)."""
    cap = None if max_mb is None else int(max_mb * 2**20)
    docs: list[tuple[str, str]] = []
    corpus_hash, n_bytes = hashlib.sha256(), 0
    for doc_id, text in iter_documents(source, text_field):
        if not text:
            continue
        b = len(text.encode("utf-8"))
        if cap is not None and n_bytes + b > cap and docs:
            break
        docs.append((doc_id, text))
        corpus_hash.update(doc_id.encode() + b"\0" + text.encode("utf-8", errors="replace") + b"\0")
        n_bytes += b
    if not docs:
        raise UserError(f"source {source} holds no text; check the path or --text-field")
    val_mask = [is_val_doc(d, val_frac) for d, _ in docs]
    if not any(val_mask):  # tiny corpora: take the document with the smallest hash
        val_mask[min(range(len(docs)), key=lambda i: hashlib.sha256(docs[i][0].encode()).digest())] = True
    if all(val_mask):
        raise UserError(f"source {source} has a single document; give at least two documents (files or lines)")
    return Corpus(docs, val_mask, n_bytes, corpus_hash.hexdigest())

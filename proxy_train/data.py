"""Corpus -> tokenizer + token files for proxy training (``scaleplan data prepare``).

Output folder (docs/CONTRACTS.md): ``tokenizer.json`` (Hugging Face ``tokenizers`` format),
``train.bin`` / ``val.bin`` (raw little-endian numpy arrays, uint16 when the vocab is < 65536,
else uint32; every document is followed by the end-of-text id), ``meta.json``.

Conventions:
* Default corpus: the running Python's standard-library sources (``sysconfig`` "stdlib" path,
  ``*.py`` files in sorted order, ``site-packages`` and test folders left out), no download.
* Split: a document goes to validation iff the first 8 bytes of sha256(its id) read as an
  integer are below ``val_frac * 2^64``: deterministic, document-level, independent of order.
* Tokenizer: byte-level BPE trained on the *training* documents only (so validation text is
  unseen), or raw bytes (the 256 byte tokens, no merges), or a user's tokenizer.json.
  The model vocab is the tokenizer vocab padded up to a multiple of 64.
* The folder is built in a temporary sibling and renamed at the end: a killed run leaves nothing.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from planner import __version__
from planner.errors import UserError
from planner.io import ensure_dir, read_json, write_json

EOT = "<|endoftext|>"
PAD_MULTIPLE = 64
TEXT_SUFFIXES = (".txt", ".md", ".py", ".rst", ".jsonl", ".parquet")
DEFAULT_MAX_MB = 12.0


def padded_vocab(n: int, multiple: int = PAD_MULTIPLE) -> int:
    return -(-int(n) // multiple) * multiple


# ---------------------------------------------------------------------------------- corpora
def stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
    files = [p for p in root.rglob("*.py") if not (set(p.relative_to(root).parts[:-1]) & skip)]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def _docs_from_file(path: Path, text_field: str, rel: str) -> Iterator[tuple[str, str]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with open(path, encoding="utf-8", errors="replace") as f:
            for i, line in enumerate(f):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise UserError(f"{path} line {i + 1} is not valid JSON ({e.msg}); fix the file") from None
                if not isinstance(obj, dict) or text_field not in obj:
                    raise UserError(f"{path} line {i + 1} has no field {text_field!r}; pass --text-field NAME")
                yield f"{rel}#{i}", str(obj[text_field])
    elif suffix == ".parquet":
        import pyarrow.parquet as pq
        try:
            table = pq.read_table(path, columns=[text_field])
        except Exception as e:  # pyarrow raises several types for a missing column
            raise UserError(f"cannot read column {text_field!r} from {path} ({e}); pass --text-field NAME") from None
        for i, text in enumerate(table.column(text_field).to_pylist()):
            if text:
                yield f"{rel}#{i}", str(text)
    else:
        yield rel, _read_text(path)


def iter_documents(source: str, text_field: str = "text") -> Iterator[tuple[str, str]]:
    """Yield (document id, text) in a fixed order for ``stdlib``, a file/folder, or ``hf:NAME``."""
    if source == "stdlib":
        root = Path(sysconfig.get_paths()["stdlib"])
        for p in stdlib_files():
            yield p.relative_to(root).as_posix(), _read_text(p)
        return
    if source.startswith("hf:"):
        name = source[3:]
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


# ---------------------------------------------------------------------------------- tokenizers
def train_bpe(texts: list[str], vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def byte_tokenizer():
    """The 256 byte-level symbols and no merges: one token per UTF-8 byte, plus EOT."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {EOT: 0, **{ch: i + 1 for i, ch in enumerate(alphabet)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOT])
    return tok


def load_tokenizer(path: str | Path):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:
        raise UserError(f"cannot load tokenizer {path} ({e}); pass a Hugging Face tokenizer.json") from None


# ---------------------------------------------------------------------------------- prepare
def _sha256_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def prepare_data(out: str | Path, *, source: str = "stdlib", tokenizer: str = "bpe", vocab: int = 4096,
                 max_mb: float | None = DEFAULT_MAX_MB, val_frac: float = 0.05, text_field: str = "text",
                 force: bool = False, command: str | None = None, progress: bool = True) -> dict:
    """Build the data folder ``out``; returns meta.json's dict. Reuses an identical finished folder."""
    from tqdm import tqdm

    out = Path(out)
    if not (0.0 < val_frac < 0.5):
        raise UserError(f"val fraction must be in (0, 0.5), got {val_frac}")
    if max_mb is not None and max_mb <= 0:
        raise UserError(f"--max-mb must be positive, got {max_mb}")
    if tokenizer == "bpe" and not (256 < vocab < 2**32):
        raise UserError(f"BPE vocab must be above 256 (the byte alphabet), got {vocab}")
    request = {"source": source, "tokenizer": tokenizer, "vocab": vocab if tokenizer == "bpe" else None,
               "max_mb": max_mb, "val_frac": val_frac, "text_field": text_field}
    if out.exists():
        if (out / "meta.json").exists() and not force:
            old = read_json(out / "meta.json", "data meta")
            if old.get("request") == request:
                return old
            raise UserError(f"{out} already holds data prepared with other options; choose a new --out or pass --force")
        if not out.is_dir():
            raise UserError(f"{out} is a file; choose a folder path for --out")
        if any(out.iterdir()) and not force:
            raise UserError(f"{out} is not empty; choose a new --out folder or pass --force")

    # 1. read documents (capped), split by a hash of the document id
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

    # 2. tokenizer
    train_texts = [t for (_, t), v in zip(docs, val_mask) if not v]
    if tokenizer == "bpe":
        tok = train_bpe(train_texts, vocab)
    elif tokenizer == "bytes":
        tok = byte_tokenizer()
    else:
        tok = load_tokenizer(tokenizer)
    eot = tok.token_to_id(EOT)
    if eot is None:
        tok.add_special_tokens([EOT])
        eot = tok.token_to_id(EOT)
    tok_vocab = tok.get_vocab_size(with_added_tokens=True)
    dtype = np.uint16 if padded_vocab(tok_vocab) < 2**16 else np.uint32

    # 3. tokenize into a temporary sibling folder, then rename
    ensure_dir(out.parent, "--out's parent folder")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        counts = {"train": 0, "val": 0}
        ndocs = {"train": 0, "val": 0}
        files = {s: open(tmp / f"{s}.bin", "wb") for s in ("train", "val")}
        try:
            bar = tqdm(total=n_bytes, unit="B", unit_scale=True, desc="tokenizing", file=sys.stderr,
                       disable=not progress)
            chunk = 256
            for start in range(0, len(docs), chunk):
                part = docs[start:start + chunk]
                encs = tok.encode_batch([t for _, t in part], add_special_tokens=False)
                for (doc_id, text), enc, is_val in zip(part, encs, val_mask[start:start + chunk]):
                    split = "val" if is_val else "train"
                    ids = np.asarray(enc.ids + [eot], dtype=dtype)
                    files[split].write(ids.tobytes())
                    counts[split] += len(ids)
                    ndocs[split] += 1
                bar.update(sum(len(t.encode("utf-8")) for _, t in part))
            bar.close()
        finally:
            for f in files.values():
                f.close()
        tok.save(str(tmp / "tokenizer.json"))
        meta = {
            "dtype": np.dtype(dtype).name,
            "vocab_size": padded_vocab(tok_vocab),
            "tokenizer_vocab": tok_vocab,
            "eot_id": eot,
            "train_tokens": counts["train"],
            "val_tokens": counts["val"],
            "source": {"name": source, "bytes": n_bytes, "documents": len(docs),
                       "corpus_sha256": corpus_hash.hexdigest(),
                       **({"python_version": sys.version.split()[0],
                           "stdlib_path": sysconfig.get_paths()["stdlib"]} if source == "stdlib" else {})},
            "tokenizer": {"kind": tokenizer if tokenizer in ("bpe", "bytes") else "file",
                          "path": None if tokenizer in ("bpe", "bytes") else str(tokenizer),
                          "trained_on": "train split" if tokenizer == "bpe" else None},
            "sha256": _sha256_files([tmp / "tokenizer.json", tmp / "train.bin", tmp / "val.bin"]),
            "split": {"method": "sha256(doc id)[:8] < val_frac * 2^64", "val_frac": val_frac,
                      "train_docs": ndocs["train"], "val_docs": ndocs["val"]},
            "request": request,
            "meta": {"scaleplan": __version__, "command": command or "proxy_train.data.prepare_data"},
        }
        if counts["train"] < 2 or counts["val"] < 2:
            raise UserError(f"source {source} gives too few tokens ({counts}); use a larger corpus")
        write_json(tmp / "meta.json", meta)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


# ---------------------------------------------------------------------------------- reading
class TokenData:
    """A prepared data folder: ``.train`` / ``.val`` token memmaps, ``.meta``, ``.vocab_size``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise UserError(f"data folder not found: {self.path}; run `scaleplan data prepare --out {self.path}`")
        self.meta = read_json(self.path / "meta.json", "data meta.json")
        need = ("dtype", "vocab_size", "tokenizer_vocab", "train_tokens", "val_tokens", "sha256")
        missing = [k for k in need if k not in self.meta]
        if missing:
            raise UserError(f"{self.path}/meta.json lacks {missing}; re-run `scaleplan data prepare`")
        if self.meta["dtype"] not in ("uint16", "uint32"):
            raise UserError(f"{self.path}/meta.json dtype {self.meta['dtype']!r} is not uint16/uint32; re-prepare")
        self.dtype = np.dtype(self.meta["dtype"])
        self.vocab_size = int(self.meta["vocab_size"])
        if self.vocab_size < int(self.meta["tokenizer_vocab"]):
            raise UserError(f"{self.path}: model vocab {self.vocab_size} < tokenizer vocab; re-prepare the data")
        tok_path = self.path / "tokenizer.json"
        if tok_path.exists():
            n = load_tokenizer(tok_path).get_vocab_size(with_added_tokens=True)
            if n != int(self.meta["tokenizer_vocab"]):
                raise UserError(f"{tok_path} has {n} tokens but meta.json says {self.meta['tokenizer_vocab']}; "
                                "the folder was mixed up; re-run `scaleplan data prepare`")
        self.train = self._open("train")
        self.val = self._open("val")

    def _open(self, split: str) -> np.ndarray:
        f = self.path / f"{split}.bin"
        n = int(self.meta[f"{split}_tokens"])
        if not f.exists():
            raise UserError(f"{f} is missing; re-run `scaleplan data prepare`")
        if f.stat().st_size != n * self.dtype.itemsize:
            raise UserError(f"{f} has {f.stat().st_size} bytes, expected {n * self.dtype.itemsize}; "
                            "the file is truncated or corrupt; re-run `scaleplan data prepare`")
        return np.memmap(f, dtype=self.dtype, mode="r", shape=(n,))

    def check_seq_len(self, seq_len: int) -> None:
        if len(self.val) < seq_len + 1 or len(self.train) < seq_len + 1:
            raise UserError(f"sequence length {seq_len} is longer than the data ({len(self.train)} train, "
                            f"{len(self.val)} val tokens); use a smaller --seq-len or more data")

    def windows(self, split: str, starts, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and next-token targets (int64, (B, seq_len)) for windows beginning at ``starts``."""
        arr = self.train if split == "train" else self.val
        seq = seq_len
        block = np.stack([np.asarray(arr[s:s + seq + 1], dtype=np.int64) for s in starts])
        return block[:, :-1], block[:, 1:]

    def val_starts(self, n_windows: int, seq_len: int) -> list[int]:
        """Fixed, evenly spaced validation windows (the same for every run on this data)."""
        last = len(self.val) - seq_len - 1
        if n_windows == 1 or last == 0:
            return [0] * n_windows
        return [int(round(i * last / (n_windows - 1))) for i in range(n_windows)]

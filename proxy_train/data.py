"""Prepared proxy data: ``prepare_data`` (``scaleplan data prepare``) writes a data folder, ``TokenData`` reads it.

Output folder (docs/CONTRACTS.md): ``tokenizer.json`` (Hugging Face ``tokenizers`` format),
``train.bin`` / ``val.bin`` (raw little-endian numpy arrays, uint16 when the vocab is < 65536,
else uint32; every document is followed by the end-of-text id), ``meta.json``.

Conventions:
* Documents and their train/val split: :mod:`proxy_train.corpus`; tokenizers:
  :mod:`proxy_train.tokenizer`. The model vocab is the tokenizer vocab padded up to a multiple of 64.
* ``meta.json`` is read only through ``TokenData`` (``TokenData.read_meta`` for the header alone).
* The folder is built in a temporary sibling and renamed at the end: a killed run leaves nothing.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np

from planner import __version__
from planner.errors import UserError
from planner.io import ensure_dir, read_json, write_json
from planner.schema import check_rule, check_value
from proxy_train.limits import MAX_MB, MAX_VOCAB
from proxy_train.corpus import Corpus, read_corpus
from proxy_train.tokenizer import load_tokenizer, make_tokenizer

PAD_MULTIPLE = 64
DEFAULT_MAX_MB = 12.0
META_KEYS = ("dtype", "vocab_size", "tokenizer_vocab", "train_tokens", "val_tokens", "sha256")
#: meta.json's typed keys (planner/schema.py annotations) and their ranges; other keys are provenance.
_META_TYPES = {"dtype": (str, ("uint16", "uint32")), "vocab_size": (int, "positive"),
               "tokenizer_vocab": (int, "positive"), "eot_id": (int, "nonneg"), "train_tokens": (int, "nonneg"),
               "val_tokens": (int, "nonneg"), "sha256": (str, None)}
_META_FIX = "re-run `scaleplan data prepare`"
#: Token files up to this many tokens get an exact max-id check at open (np.max over the memmap, one
#: sequential read); larger ones a sampled check of ID_SAMPLE_CHUNKS evenly spaced chunks.
ID_CHECK_EXACT = 256 * 2**20
ID_SAMPLE_CHUNKS, ID_CHUNK = 64, 2**16


def padded_vocab(n: int, multiple: int = PAD_MULTIPLE) -> int:
    return -(-int(n) // multiple) * multiple


# ---------------------------------------------------------------------------------- prepare
def _sha256_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _check_options(tokenizer: str, vocab: int, max_mb: float | None, val_frac: float) -> None:
    if not (0.0 < val_frac < 0.5):
        raise UserError(f"val fraction must be in (0, 0.5), got {val_frac}")
    if max_mb is not None and max_mb <= 0:
        raise UserError(f"--max-mb must be positive, got {max_mb}")
    if tokenizer == "bpe" and not (256 < vocab <= MAX_VOCAB):
        raise UserError(f"BPE vocab must be above 256 (the byte alphabet) and at most {MAX_VOCAB:,} "
                        f"(proxy_train/limits.py), got {vocab}")
    if max_mb is not None and max_mb > MAX_MB:
        raise UserError(f"--max-mb must be at most {MAX_MB:g} MiB, got {max_mb}")


def _existing(out: Path, request: dict, force: bool) -> dict | None:
    """meta.json of an identical finished folder at ``out`` (reused), None to build; UserError if
    ``out`` holds something else and ``force`` is off."""
    if not out.exists():
        return None
    if (out / "meta.json").exists() and not force:
        old = TokenData.read_meta(out)
        if old.get("request") == request:
            return old
        raise UserError(f"{out} already holds data prepared with other options; choose a new --out or pass --force")
    if not out.is_dir():
        raise UserError(f"{out} is a file; choose a folder path for --out")
    if any(out.iterdir()) and not force:
        raise UserError(f"{out} is not empty; choose a new --out folder or pass --force")
    return None


def _write_tokens(folder: Path, corpus: Corpus, tok, eot: int, dtype, progress: bool) -> dict[str, dict[str, int]]:
    """Tokenize every document into ``folder``/{train,val}.bin; returns tokens and documents per split."""
    from tqdm import tqdm

    counts = {"train": 0, "val": 0}
    ndocs = {"train": 0, "val": 0}
    files = {s: open(folder / f"{s}.bin", "wb") for s in ("train", "val")}
    try:
        bar = tqdm(total=corpus.n_bytes, unit="B", unit_scale=True, desc="tokenizing", file=sys.stderr,
                   disable=not progress)
        chunk = 256
        for start in range(0, len(corpus.docs), chunk):
            part = corpus.docs[start:start + chunk]
            encs = tok.encode_batch([t for _, t in part], add_special_tokens=False)
            for enc, is_val in zip(encs, corpus.val_mask[start:start + chunk]):
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
    return {"tokens": counts, "docs": ndocs}


def _meta(folder: Path, *, corpus: Corpus, source: str, tokenizer: str, tok_vocab: int, eot: int, dtype,
          split: dict, val_frac: float, request: dict, command: str | None) -> dict:
    return {
        "dtype": np.dtype(dtype).name,
        "vocab_size": padded_vocab(tok_vocab),
        "tokenizer_vocab": tok_vocab,
        "eot_id": eot,
        "train_tokens": split["tokens"]["train"],
        "val_tokens": split["tokens"]["val"],
        "source": {"name": source, "bytes": corpus.n_bytes, "documents": len(corpus.docs),
                   "corpus_sha256": corpus.sha256,
                   **({"python_version": sys.version.split()[0],
                       "stdlib_path": sysconfig.get_paths()["stdlib"]} if source == "stdlib" else {})},
        "tokenizer": {"kind": tokenizer if tokenizer in ("bpe", "bytes") else "file",
                      "path": None if tokenizer in ("bpe", "bytes") else str(tokenizer),
                      "trained_on": "train split" if tokenizer == "bpe" else None},
        "sha256": _sha256_files([folder / "tokenizer.json", folder / "train.bin", folder / "val.bin"]),
        "split": {"method": "sha256(doc id)[:8] < val_frac * 2^64", "val_frac": val_frac,
                  "train_docs": split["docs"]["train"], "val_docs": split["docs"]["val"]},
        "request": request,
        "meta": {"scaleplan": __version__, "command": command or "proxy_train.data.prepare_data"},
    }


def _install(tmp: Path, out: Path) -> None:
    """Move the finished temporary folder to ``out`` (replacing an old one only after the rename)."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def prepare_data(out: str | Path, *, source: str = "stdlib", tokenizer: str = "bpe", vocab: int = 4096,
                 max_mb: float | None = DEFAULT_MAX_MB, val_frac: float = 0.05, text_field: str = "text",
                 force: bool = False, command: str | None = None, progress: bool = True) -> dict:
    """Build the data folder ``out``; returns meta.json's dict. Reuses an identical finished folder."""
    out = Path(out)
    _check_options(tokenizer, vocab, max_mb, val_frac)
    request = {"source": source, "tokenizer": tokenizer, "vocab": vocab if tokenizer == "bpe" else None,
               "max_mb": max_mb, "val_frac": val_frac, "text_field": text_field}
    old = _existing(out, request, force)
    if old is not None:
        return old
    corpus = read_corpus(source, text_field=text_field, max_mb=max_mb, val_frac=val_frac)
    tok, eot = make_tokenizer(tokenizer, corpus.train_texts, vocab)
    tok_vocab = tok.get_vocab_size(with_added_tokens=True)
    dtype = np.uint16 if padded_vocab(tok_vocab) < 2**16 else np.uint32
    new_root = next((p for p in reversed([out.parent, *out.parent.parents]) if not p.exists()), None)
    ensure_dir(out.parent, "--out's parent folder")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise UserError(f"cannot create a folder in {out.parent} ({e.strerror}); choose another --out") from None
    try:
        split = _write_tokens(tmp, corpus, tok, eot, dtype, progress)
        tok.save(str(tmp / "tokenizer.json"))
        meta = _meta(tmp, corpus=corpus, source=source, tokenizer=tokenizer, tok_vocab=tok_vocab, eot=eot,
                     dtype=dtype, split=split, val_frac=val_frac, request=request, command=command)
        if split["tokens"]["train"] < 2 or split["tokens"]["val"] < 2:
            raise UserError(f"source {source} gives too few tokens ({split['tokens']}); use a larger corpus")
        write_json(tmp / "meta.json", meta)
        _install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if new_root is not None:  # folders made for --out: a refused prepare leaves nothing behind
            shutil.rmtree(new_root, ignore_errors=True)
        raise
    return meta


def data_summary(out: str | Path, meta: dict) -> str:
    """One line about a prepared folder (what ``scaleplan data prepare`` prints)."""
    return (f"{out}: {meta['train_tokens']:,} train + {meta['val_tokens']:,} val tokens, vocab "
            f"{meta['tokenizer_vocab']} (model vocab {meta['vocab_size']}), {meta['dtype']}, sha256 {meta['sha256'][:12]}")


# ---------------------------------------------------------------------------------- reading
class TokenData:
    """A prepared data folder: ``.train`` / ``.val`` token memmaps, ``.meta``, ``.vocab_size``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.meta = self.read_meta(self.path, need=META_KEYS)
        if self.meta["dtype"] not in ("uint16", "uint32"):
            raise UserError(f"{self.path}/meta.json dtype {self.meta['dtype']!r} is not uint16/uint32; re-prepare")
        self.dtype = np.dtype(self.meta["dtype"])
        self.vocab_size = int(self.meta["vocab_size"])
        if self.vocab_size > np.iinfo(self.dtype).max + 1:
            raise UserError(f"{self.path}/meta.json vocab_size {self.vocab_size} does not fit {self.dtype.name} "
                            f"token ids; {_META_FIX}")
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

    @staticmethod
    def read_meta(path: str | Path, need: tuple[str, ...] = ()) -> dict:
        """The folder's meta.json alone (no token files opened); UserError if the folder or a
        ``need`` key is missing. The one reader of meta.json."""
        path = Path(path)
        if not path.is_dir():
            raise UserError(f"data folder not found: {path}; make it (tokenizer.json, train.bin, val.bin, meta.json) "
                            f"with `scaleplan data prepare --out {path}`")
        meta = read_json(path / "meta.json", "data meta.json")
        if not isinstance(meta, dict):
            raise UserError(f"{path}/meta.json is not a JSON object; re-run `scaleplan data prepare`")
        missing = [k for k in need if k not in meta]
        if missing:
            raise UserError(f"{path}/meta.json lacks {missing}; re-run `scaleplan data prepare`")
        for key, (tp, rule) in _META_TYPES.items():
            if key in meta:
                check_value(meta[key], tp, f"{path}/meta.json {key}", _META_FIX)
                if rule is not None:
                    check_rule(meta[key], rule, f"{path}/meta.json {key}", _META_FIX)
        return meta

    def _open(self, split: str) -> np.ndarray:
        f = self.path / f"{split}.bin"
        n = int(self.meta[f"{split}_tokens"])
        if not f.is_file():
            raise UserError(f"{f} is {'not a file' if f.exists() else 'missing'}; re-run `scaleplan data prepare`")
        if f.stat().st_size != n * self.dtype.itemsize:
            raise UserError(f"{f} has {f.stat().st_size} bytes, expected {n * self.dtype.itemsize}; "
                            "the file is truncated or corrupt; re-run `scaleplan data prepare`")
        if n == 0:
            raise UserError(f"{f} holds no tokens; {_META_FIX} with more text (or a larger val fraction)")
        arr = np.memmap(f, dtype=self.dtype, mode="r", shape=(n,))
        top = _max_id(arr)
        if top >= self.vocab_size:
            raise UserError(f"{f} holds token id {top} >= vocab_size {self.vocab_size} (meta.json); the folder "
                            f"was mixed up or corrupted; {_META_FIX}")
        return arr

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


def _max_id(arr: np.ndarray) -> int:
    """Largest token id: exact (np.max over the memmap) up to ID_CHECK_EXACT tokens; above that the
    max over ID_SAMPLE_CHUNKS evenly spaced chunks of ID_CHUNK tokens (a sampled check: a corrupt
    stretch between chunks can pass; the embedding lookup then fails on it)."""
    if len(arr) <= ID_CHECK_EXACT:
        return int(arr.max())
    starts = np.linspace(0, len(arr) - ID_CHUNK, ID_SAMPLE_CHUNKS).astype(np.int64)
    return max(int(arr[s:s + ID_CHUNK].max()) for s in starts)

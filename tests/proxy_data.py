"""A tiny prepared corpus (about 0.6 MB of stdlib sources), built once per test process."""
from __future__ import annotations

from pathlib import Path

_CACHE: dict[str, Path] = {}


def tiny_data(tmp_path_factory, tokenizer: str = "bpe") -> Path:
    if tokenizer not in _CACHE:
        from proxy_train.data import prepare_data

        out = tmp_path_factory.mktemp("data") / f"tiny_{tokenizer}"
        prepare_data(out, max_mb=0.6, vocab=512, tokenizer=tokenizer, val_frac=0.1, progress=False)
        _CACHE[tokenizer] = out
    return _CACHE[tokenizer]

"""Tokenizers for proxy data (Hugging Face ``tokenizers``): a trained byte-level BPE, raw bytes, or a file.

Conventions: every tokenizer has the end-of-text token ``EOT`` (added when a user's tokenizer
lacks it); the BPE is trained on the *training* documents only, so validation text is unseen;
``bytes`` is the 256 byte-level symbols with no merges (one token per UTF-8 byte) plus EOT.
"""
from __future__ import annotations

from pathlib import Path

from planner.errors import UserError

EOT = "<|endoftext|>"


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


def make_tokenizer(kind: str, train_texts: list[str], vocab: int) -> tuple[object, int]:
    """(tokenizer, EOT id) for ``kind`` = bpe (trained on ``train_texts``), bytes, or a tokenizer.json path."""
    if kind == "bpe":
        tok = train_bpe(train_texts, vocab)
    elif kind == "bytes":
        tok = byte_tokenizer()
    else:
        tok = load_tokenizer(kind)
    eot = tok.token_to_id(EOT)
    if eot is None:
        tok.add_special_tokens([EOT])
        eot = tok.token_to_id(EOT)
    return tok, eot

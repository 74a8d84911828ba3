import json
import sys

import numpy as np
import pytest

from planner.errors import UserError
from proxy_train.corpus import is_val_doc, stdlib_files
from proxy_train.data import TokenData, prepare_data
from proxy_train.tokenizer import load_tokenizer
from proxy_data import tiny_data


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tiny_data(tmp_path_factory)


def test_meta_and_files_agree(data_dir):
    meta = json.loads((data_dir / "meta.json").read_text())
    for key in ("dtype", "vocab_size", "tokenizer_vocab", "train_tokens", "val_tokens", "source", "sha256", "split"):
        assert key in meta
    assert meta["vocab_size"] % 64 == 0 and meta["vocab_size"] >= meta["tokenizer_vocab"] == 512
    assert meta["dtype"] == "uint16"
    assert meta["source"]["python_version"] == sys.version.split()[0]
    d = TokenData(data_dir)
    assert len(d.train) == meta["train_tokens"] and len(d.val) == meta["val_tokens"]
    assert int(d.train.max()) < meta["tokenizer_vocab"]
    # every document ends with the end-of-text id
    assert int(d.train[-1]) == meta["eot_id"] and int(d.val[-1]) == meta["eot_id"]


def test_tokens_decode_back_to_the_stdlib_source(data_dir):
    """The train stream starts with the first stdlib file that is not in the validation split."""
    d = TokenData(data_dir)
    tok = load_tokenizer(data_dir / "tokenizer.json")
    eot = d.meta["eot_id"]
    first = np.asarray(d.train[: int(np.argmax(np.asarray(d.train) == eot))]).tolist()
    import sysconfig
    root = sysconfig.get_paths()["stdlib"]
    files = [p for p in stdlib_files() if not is_val_doc(p.relative_to(root).as_posix(), 0.1)]
    assert tok.decode(first) == files[0].read_bytes().decode("utf-8", errors="replace")
    # BPE compresses source code: well under one token per byte
    assert d.meta["source"]["bytes"] / (len(d.train) + len(d.val)) > 2.0


def test_split_is_deterministic_and_document_level():
    ids = [f"doc{i}" for i in range(4000)]
    frac = sum(is_val_doc(i, 0.05) for i in ids) / len(ids)
    assert 0.04 < frac < 0.06
    assert [is_val_doc(i, 0.05) for i in ids] == [is_val_doc(i, 0.05) for i in ids]


def test_bytes_tokenizer_and_jsonl_source(tmp_path):
    src = tmp_path / "corpus.jsonl"
    src.write_text("\n".join(json.dumps({"text": f"document number {i} " * 20}) for i in range(60)))
    meta = prepare_data(tmp_path / "d", source=str(src), tokenizer="bytes", val_frac=0.2, progress=False)
    assert meta["tokenizer_vocab"] == 257 and meta["vocab_size"] == 320
    total_bytes = meta["source"]["bytes"]
    assert meta["train_tokens"] + meta["val_tokens"] == total_bytes + meta["source"]["documents"]


def test_rerun_reuses_and_bad_input(tmp_path, data_dir):
    with pytest.raises(UserError, match="corpus not found"):
        prepare_data(tmp_path / "x", source=str(tmp_path / "missing"), progress=False)
    assert not (tmp_path / "x").exists()
    with pytest.raises(UserError, match="not empty"):
        (tmp_path / "busy").mkdir()
        (tmp_path / "busy" / "f").write_text("x")
        prepare_data(tmp_path / "busy", max_mb=0.1, progress=False)
    with pytest.raises(UserError, match="field"):
        (tmp_path / "c.jsonl").write_text('{"body": "x"}\n')
        prepare_data(tmp_path / "y", source=str(tmp_path / "c.jsonl"), progress=False)
    with pytest.raises(UserError, match="data folder not found"):
        TokenData(tmp_path / "nothing")


def test_truncated_or_mismatched_folder_is_rejected(tmp_path, data_dir):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(data_dir, bad)
    with open(bad / "val.bin", "r+b") as f:
        f.truncate(10)
    with pytest.raises(UserError, match="truncated"):
        TokenData(bad)
    bad2 = tmp_path / "bad2"
    shutil.copytree(data_dir, bad2)
    meta = json.loads((bad2 / "meta.json").read_text())
    meta["tokenizer_vocab"] = 300
    (bad2 / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="tokens but meta.json says"):
        TokenData(bad2)

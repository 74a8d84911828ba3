"""Layer inheritance (Inheritune, Sanyal et al., arXiv:2404.08634, §3 "Inheritune"): start a
smaller proxy from the token embedding, the first K blocks, the final norm and the readout of a
trained one, then train it as usual.

Conventions:
* The source is a finished run folder (run.json status ``ok``) holding ``model.pt``, the final
  weights ``scaleplan train`` keeps (:func:`save_weights`; the training checkpoint ``ckpt.pt`` is
  deleted when a run finishes). Read with ``torch.load(weights_only=True)``.
* The new model must have the source's width, heads, head size, FFN width, padded vocab and
  parameterization (a differing field is a UserError naming it) and exactly K layers.
* Weights are copied in place into the model the trainer built (``Tensor.copy_``), so its μP base
  shapes (``p.infshape``, set by ``proxy_train.model.build_model`` for the new depth) and the
  optimizer's parameter groups are the ones a fresh run of that config gets.
* The inheritance (source run_id, config_hash, K, the weights' sha256) is part of the new run's
  config (``TrainConfig.extra["inherit"]``), hence of its config hash: a rerun resumes its own
  checkpoint and never re-inherits over it; a changed source file is refused (sha256 differs).
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch

from planner.errors import UserError
from planner.io import read_json

WEIGHTS_FILE = "model.pt"
_SHAPE_FIELDS = ("d_model", "n_heads", "head_dim", "d_ffn", "vocab_size")


def save_weights(model: torch.nn.Module, path: Path, config_hash: str, run_id: str) -> None:
    """The final model weights (state dict + the run's config hash and id), written atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "config_hash": config_hash, "run_id": run_id}, tmp)
    tmp.replace(path)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def finished_run(run_dir: str | Path, flag: str = "--inherit-from") -> dict:
    """run.json of a run that ended ``ok`` and kept its final weights (UserError naming ``flag`` otherwise)."""
    run_dir = Path(run_dir)
    rec_path, weights = run_dir / "run.json", run_dir / WEIGHTS_FILE
    if not rec_path.is_file():
        raise UserError(f"{flag} {run_dir}: no run.json there; give the folder of a finished `scaleplan train` run")
    rec = read_json(rec_path, "run.json")
    if not isinstance(rec, dict) or rec.get("status") != "ok":
        status = rec.get("status") if isinstance(rec, dict) else None
        raise UserError(f"{flag} {run_dir}: the run's status is {status!r}, not 'ok'; finish it first")
    if not weights.is_file():
        raise UserError(f"{flag} {run_dir}: no final weights {WEIGHTS_FILE} there (kept by `scaleplan "
                        "train`); retrain the source run with `scaleplan train` into a new folder")
    return rec


def source_record(run_dir: str | Path, layers: int) -> dict:
    """The ``inherit`` record for K = ``layers`` blocks of the run in ``run_dir`` (UserError when
    it has no finished record or weights, or K is out of range)."""
    run_dir = Path(run_dir)
    rec = finished_run(run_dir)
    weights = run_dir / WEIGHTS_FILE
    n_src = int(rec.get("n_layers") or 0)
    if not 1 <= layers <= n_src:
        raise UserError(f"--inherit-layers {layers} is out of range: the source run has {n_src} layers; "
                        f"choose 1..{n_src}")
    return {"from_run": str(run_dir), "run_id": rec.get("run_id"), "config_hash": rec.get("config_hash"),
            "layers": int(layers), "source_layers": n_src, "weights": WEIGHTS_FILE,
            "sha256": file_sha256(weights), "source_shape": {k: rec.get("shape", {}).get(k) for k in _SHAPE_FIELDS},
            "source_parameterization": rec.get("parameterization")}


def check_compatible(inherit: dict, shape: dict, parameterization: str, n_layers: int) -> None:
    """UserError naming the first field in which the new model differs from the source."""
    for k in _SHAPE_FIELDS:
        if inherit["source_shape"].get(k) != shape.get(k):
            raise UserError(f"cannot inherit: {k} differs (source {inherit['source_shape'].get(k)}, this run "
                            f"{shape.get(k)}); give the source's --d-model/--heads/--head-dim and data")
    if inherit["source_parameterization"] != parameterization:
        raise UserError(f"cannot inherit: parameterization differs (source {inherit['source_parameterization']}, "
                        f"this run {parameterization}); pass --param {inherit['source_parameterization']}")
    if n_layers != inherit["layers"]:
        raise UserError(f"--n-layers {n_layers} differs from --inherit-layers {inherit['layers']}; "
                        "the inherited model has exactly K layers (omit --n-layers)")


def _read_weights(path: Path, device) -> dict:
    """The ``model`` state dict in ``path`` (``weights_only``: no pickled code runs); torch's warnings
    about a file it cannot parse are silenced, the caller turns the error into one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location=device, weights_only=True)["model"]


def _load_source(inherit: dict, device) -> dict:
    path = Path(inherit["from_run"]) / inherit["weights"]
    if not path.is_file() or file_sha256(path) != inherit["sha256"]:
        raise UserError(f"{path} is missing or changed since this run was configured (sha256 differs); "
                        "rerun the command to inherit from the current file")
    try:
        return _read_weights(path, device)
    except Exception as e:
        raise UserError(f"{path} cannot be read as weights ({type(e).__name__}); retrain the source run") from None


def inherited_names(model: torch.nn.Module, k: int) -> list[str]:
    """The new model's parameter names copied from the source: all but blocks >= k (none when the
    new model has exactly k blocks)."""
    return [n for n, _ in model.named_parameters()
            if not (n.startswith("blocks.") and int(n.split(".")[1]) >= k)]


@torch.no_grad()
def apply(model: torch.nn.Module, inherit: dict) -> int:
    """Copy the source's embedding, first K blocks, final norm and readout into ``model`` in place;
    returns the number of parameters copied."""
    src = _load_source(inherit, next(model.parameters()).device)
    params = dict(model.named_parameters())
    n = 0
    for name in inherited_names(model, inherit["layers"]):
        if name not in src or src[name].shape != params[name].shape:
            got = tuple(src[name].shape) if name in src else "missing"
            raise UserError(f"cannot inherit {name}: source {got}, this model {tuple(params[name].shape)}")
        params[name].copy_(src[name])
        n += params[name].numel()
    return n


def load_final_model(run_dir: str | Path, flag: str = "--run"):
    """(model, TrainConfig, run.json) of a finished run, rebuilt from its recorded config (μP base
    shapes as its trainer attached them) with its final weights loaded; nothing is written."""
    from proxy_train.config import TrainConfig
    from proxy_train.model import build_model
    from proxy_train.trainer import model_config_for

    rec = finished_run(run_dir, flag)
    try:
        cfg = TrainConfig.from_dict(rec["config"])
        vocab = int(rec["data"]["vocab_size"])
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{run_dir}/run.json has no usable config ({type(e).__name__}: {e}); retrain the run") from None
    model = build_model(model_config_for(cfg, vocab), base_width=cfg.base_width, fixed_heads=cfg.n_heads is not None,
                        init=False)
    path = Path(run_dir) / WEIGHTS_FILE
    try:
        model.load_state_dict(_read_weights(path, "cpu"))
    except Exception as e:
        raise UserError(f"{path} does not hold this run's weights ({type(e).__name__}); retrain the run") from None
    return model, cfg, rec

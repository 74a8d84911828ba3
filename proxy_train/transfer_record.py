"""The `transfer` record of an hparams.yaml: a μTransfer check (proxy_train/transfer.py) as evidence.

``--record-into`` (:func:`record_into_hparams`) writes one parameterization's result as the
``transfer`` mapping of an hparams.yaml (planner/hparams.py ``TransferRecord``: ``param``,
``widths``, ``drift_octaves``, ``any_edge``, ``corpus_sha256``, ``steps``, ``hp`` = the values held
fixed), which the quality gate (planner/hparams_gate.py) reads. It is refused (UserError, file
untouched) when the check did not run the file's parameterization, does not cover its base width,
or ran on another corpus; the file is rewritten atomically and re-validated by ``HParams``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from planner.errors import UserError


def hparams_path(target: str | Path) -> Path:
    """``target`` itself, or ``target/hparams.yaml`` when it is a folder (a sweep study)."""
    target = Path(target)
    return target / "hparams.yaml" if target.is_dir() else target


def read_target_hparams(path: Path):
    from planner.hparams import HParams

    if not path.is_file():
        raise UserError(f"--record-into {path}: no such hparams file; pass an hparams.yaml "
                        "(or a study folder holding one, from `scaleplan sweep export`)")
    return HParams.read(path)


def record_problems(hp, params, widths, corpus_sha256: str | None) -> list[str]:
    """Why a check over ``params`` x ``widths`` on ``corpus_sha256`` says nothing about ``hp`` (empty: fine)."""
    out = []
    if hp.parameterization not in params:
        out.append(f"its values are {hp.parameterization} but the check ran {','.join(params)} only: "
                   f"rerun with --param {hp.parameterization}")
    ws = sorted(int(w) for w in widths)
    if ws and not ws[0] <= hp.base_width <= ws[-1]:
        out.append(f"its base width {hp.base_width} lies outside the checked widths {ws[0]}-{ws[-1]}: "
                   f"include {hp.base_width} in --widths")
    ours = hp.source.get("corpus_sha256")
    if corpus_sha256 and ours and corpus_sha256 != ours:
        out.append(f"the check's corpus ({corpus_sha256[:12]}) is not the sweep's ({ours[:12]}): "
                   "run the check on the sweep's --data")
    return out


def refuse_mismatch(path: Path, problems: list[str]) -> None:
    if problems:
        raise UserError(f"cannot record this transfer check into {path}: " + "; ".join(problems))


def transfer_record(result: dict, param: str) -> dict:
    """The ``transfer`` mapping (module docstring) of ``param``'s part of an :func:`analyze`/:func:`finish` result."""
    d = result["params"].get(param)
    if d is None:
        raise UserError(f"the transfer check holds {sorted(result['params'])}, not {param}; rerun it with "
                        f"--param {param}")
    if d["drift_octaves"] is None:
        raise UserError(f"the {param} check found an optimum at fewer than two widths (runs diverged?): "
                        "nothing to record; widen or lower the --lrs grid and rerun")
    meta = result.get("meta") or {}
    rec: dict[str, Any] = {"param": param, "widths": [int(w) for w in d["widths"]],
                           "drift_octaves": float(d["drift_octaves"]), "any_edge": bool(d["any_edge"])}
    if meta.get("corpus_sha256"):
        rec["corpus_sha256"] = str(meta["corpus_sha256"])
    steps = (meta.get("setting") or {}).get("steps")
    if steps:
        rec["steps"] = int(steps)
    if meta.get("transfer_hp"):
        rec["hp"] = {str(k): float(v) for k, v in meta["transfer_hp"].items()}
    return rec


def record_into_hparams(target: str | Path, result: dict) -> Path:
    """Write ``result``'s record for the file's own parameterization as the ``transfer`` mapping of
    the hparams.yaml ``target`` (or ``target/hparams.yaml``); refuses a mismatch (module docstring)."""
    from planner.hparams import HParams

    path = hparams_path(target)
    hp = read_target_hparams(path)
    d = result["params"].get(hp.parameterization) or {}
    refuse_mismatch(path, record_problems(hp, sorted(result["params"]), d.get("widths") or [],
                                  (result.get("meta") or {}).get("corpus_sha256")))
    data = {**hp.to_dict(), "transfer": transfer_record(result, hp.parameterization)}
    return HParams.from_dict(data, where=str(path)).write(path)

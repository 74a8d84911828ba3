"""The hostile pass's case table (issue 18): what a hostile or careless user types, per CLI command.

Each :class:`Case` is one ``scaleplan`` command line run by ``tools/hostile_pass.py`` in a fresh
copy of a prepared work folder (see :data:`TEMPLATE`): ``{W}`` in an argument is that folder. The
template holds a tiny data folder ``data/`` (byte tokenizer), a one-trial study ``study/``, a
finished tiny run ``run/``, ``plan.yaml``, ``hparams.yaml``, ``runs.csv``, ``fit.json``, a regular
file ``afile`` and an empty folder ``adir/``. ``files`` adds case-specific files (hostile
artefacts) before the run: text, bytes, or a :class:`Link` (a symlink).

``expect``: ``refuse`` means the input is wrong, so the only clean outcome is exit 2 with one line
and nothing written; ``either`` means the input is legal (a boundary value), so exit 0 is clean too.

Conventions: training cases use tiny settings (:data:`TINY_TRAIN`: d_model 32, 1 layer, 2 steps of
2 x 16 tokens) so the whole table runs in minutes on two cores; ``fast`` marks the representative
subset the CI test (tests/test_hostile_pass.py) runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import hostile_cases_new as new_cases  # tools/ is on sys.path (tools/hostile_pass.py, tests/test_hostile_pass.py)

__all__ = ["Case", "Link", "CASES", "FAST_IDS", "TEMPLATE", "BAD_NUMBERS", "case_by_id"]


@dataclass(frozen=True)
class Link:
    """A symbolic link to ``target`` (``{W}`` expanded)."""
    target: str


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    expect: str = "refuse"        # refuse | either
    files: dict = field(default_factory=dict, hash=False)  # relative path -> str | bytes | Link
    group: str = "numbers"        # numbers | paths | artefacts | misc
    timeout: float = 90.0
    fast: bool = False
    must_not_create: tuple[str, ...] = ()  # paths under {W} that must not exist afterwards, whatever the exit


#: What the work folder template holds (tools/hostile_pass.py builds it once and reuses it).
TEMPLATE = ("data/", "study/", "run/", "plan.yaml", "hparams.yaml", "runs.csv", "fit.json", "afile", "adir/")

#: The bad numbers tried on every numeric flag: (name, text).
BAD_NUMBERS = [("nan", "nan"), ("inf", "inf"), ("neg", "-1"), ("zero", "0"), ("huge", "1e300"),
               ("tiny", "1e-300"), ("hugeint", "9" * 40), ("text", "abc")]

TINY_MODEL = ["--d-model", "32", "--n-layers", "1", "--head-dim", "16"]
TINY_LEN = ["--batch", "2", "--seq-len", "16", "--steps", "2"]
TINY_TRAIN = ["--data", "{W}/data", *TINY_MODEL, *TINY_LEN]
TINY_SWEEP = ["--data", "{W}/data", "--widths", "32", "--trials", "1", "--n-layers", "1", "--head-dim", "16",
              "--batch", "2", "--seq-len", "16", "--steps", "2", "--pruner", "none", "--sampler", "random"]
TINY_CC = ["--widths", "32,64", "--steps", "2", "--seeds", "1", "--n-layers", "1", "--head-dim", "16", "--param", "sp"]
TINY_TC = ["--data", "{W}/data", "--widths", "32,64", "--lrs", "-8:-6:1", "--param", "mup", "--steps", "2",
           "--n-layers", "1", "--head-dim", "16", "--batch", "2", "--seq-len", "16", "--workers", "1"]
TINY_LADDER = ["--data", "{W}/data", "--hparams", "{W}/hparams.yaml", "--sizes", "32:1,64:1", "--tokens-per-param",
               "0.01", "--batch", "2", "--seq-len", "16", "--workers", "1", "--no-check", "--plan-only"]
RUNS_COLS = ["--n-col", "total_params", "--d-col", "tokens", "--loss-col", "final_val_loss"]
SHAPE_ALL = ["--layers", "2", "--d-model", "64", "--d-ffn", "256", "--heads", "4", "--vocab", "1000"]


def _numeric(cmd: str, base: list[str], flags: dict[str, tuple[str, ...]], *, out_flag: str | None = None,
             fast: tuple[str, ...] = ()) -> list[Case]:
    """One case per (flag, bad number). ``flags[flag]`` names the BAD_NUMBERS that are legal for it
    ("either"). ``out_flag``: the command writes to ``{W}/out_<case>``, given with this flag."""
    cases = []
    for flag, legal in flags.items():
        for name, text in BAD_NUMBERS:
            cid = f"{cmd.replace(' ', '-')}{flag}={name}"
            argv = [*cmd.split(), *base, flag, text]
            if out_flag:
                argv += [out_flag, "{W}/out_" + cid.replace("=", "_").replace("--", "_")]
            cases.append(Case(cid, tuple(argv), "either" if name in legal else "refuse",
                              fast=cid in fast))
    return cases


def _numbers() -> list[Case]:
    cases: list[Case] = []
    cases += _numeric("train", ["--data", "{W}/data", "--n-layers", "1", *TINY_LEN], {"--d-model": ()},
                      out_flag="--out")
    cases += _numeric("train", TINY_TRAIN, {
        "--n-layers": (), "--heads": (), "--base-width": (), "--base-depth": (), "--lr": ("tiny",),
        "--init-std": ("tiny",), "--out-mult": ("tiny",), "--in-mult": ("tiny",), "--attn-mult": ("tiny",),
        "--wd": ("zero", "tiny"), "--warmup-frac": ("zero", "tiny"), "--cooldown-frac": ("zero", "tiny"),
        "--min-lr-frac": ("zero", "tiny"), "--clip": ("zero", "tiny"), "--seed": ("zero",),
        "--threads": (), "--eval-every": (),
    }, out_flag="--out", fast=("train--lr=huge", "train--threads=hugeint", "train--base-width=huge",
                               "train--seed=neg"))
    cases += _numeric("train", ["--data", "{W}/data", *TINY_MODEL, "--batch", "2", "--steps", "2"],
                      {"--seq-len": ()}, out_flag="--out")
    cases += _numeric("train", ["--data", "{W}/data", *TINY_MODEL, "--seq-len", "16", "--steps", "2"],
                      {"--batch": ()}, out_flag="--out")
    cases += _numeric("train", ["--data", "{W}/data", *TINY_MODEL, "--batch", "2", "--seq-len", "16"],
                      {"--steps": (), "--tokens": ()}, out_flag="--out")
    cases += _numeric("train", ["--data", "{W}/data", "--d-model", "32", "--n-layers", "1", *TINY_LEN],
                      {"--head-dim": ()}, out_flag="--out")
    cases += _numeric("data prepare", ["--tokenizer", "bpe", "--max-mb", "0.05"], {"--vocab": ()},
                      out_flag="--out", fast=("data-prepare--vocab=hugeint",))
    cases += _numeric("data prepare", ["--tokenizer", "bytes"], {"--max-mb": ()}, out_flag="--out")
    cases += _numeric("data prepare", ["--tokenizer", "bytes", "--max-mb", "0.05"], {"--val-frac": ("tiny",)},
                      out_flag="--out")
    cases += _numeric("coord-check", ["--widths", "32,64", "--steps", "2", "--n-layers", "1", "--head-dim", "16"],
                      {"--seeds": ()}, out_flag="--out")
    cases += _numeric("coord-check", ["--widths", "32,64", "--seeds", "1", "--n-layers", "1", "--head-dim", "16"],
                      {"--steps": ()}, out_flag="--out")
    cases += _numeric("coord-check", TINY_CC, {"--lr": ("tiny",)}, out_flag="--out")
    cases += _numeric("coord-check", ["--widths", "32,64", "--steps", "2", "--seeds", "1", "--head-dim", "16"],
                      {"--n-layers": ()}, out_flag="--out")
    cases += _numeric("coord-check", ["--widths", "32,64", "--steps", "2", "--seeds", "1", "--n-layers", "1"],
                      {"--head-dim": ()}, out_flag="--out")
    cases += _numeric("sweep", TINY_SWEEP, {
        "--trials": (), "--weight-decay": ("zero", "tiny"), "--heartbeat-interval": (), "--grace-period": (),
        "--n-layers": (), "--head-dim": (), "--batch": (), "--seq-len": (), "--seed": ("zero",),
    }, out_flag="--study", fast=("sweep--trials=huge",))
    cases += _numeric("optimal", [], {"--flops": (), "--target-loss": ()},
                      fast=("optimal--flops=tiny", "optimal--target-loss=huge"))
    cases += _numeric("optimal", ["--flops", "1e21"], {"--inference-tokens": ("zero", "tiny"),
                                                        "--unique-tokens": (), "--flops-per-token-per-param": ()})
    cases += _numeric("loss", ["--params", "1e9"], {"--tokens": ()})
    cases += _numeric("loss", ["--tokens", "2e10"], {"--params": ()})
    cases += _numeric("count", [], {f: () for f in ("--layers", "--d-model", "--d-ffn", "--heads", "--vocab")})
    cases += _numeric("count", SHAPE_ALL, {f: () for f in ("--kv-heads", "--head-dim", "--seq-len",
                                                            "--pad-vocab-to", "--tp")})
    cases += _numeric("shape", [], {"--params": ()})
    cases += _numeric("shape", ["--params", "1e8"], {f: () for f in ("--vocab", "--tp", "--gqa-ratio", "--top",
                                                                     "--max-error", "--micro-batch")})
    cases += _numeric("plan", [], {"--flops": (), "--target-loss": (), "--gpu-hours": ()},
                      fast=("plan--flops=huge",))
    cases += _numeric("plan", ["--flops", "1e21"], {f: () for f in ("--gpus", "--price", "--mfu", "--vocab",
                                                                    "--seq-len", "--global-batch", "--lr")})
    cases += _numeric("fit", ["{W}/runs.csv", *RUNS_COLS, "--grid", "small", "--no-backtest"],
                      {"--bootstrap": ("zero",), "--delta": ("tiny",), "--seed": ("zero",)})
    cases += _numeric("ladder", TINY_LADDER, {"--n-sizes": (), "--batch": (), "--seq-len": ()}, out_flag="--study")
    cases += _numeric("transfer-check", TINY_TC, {"--init-std": ("tiny",)}, out_flag="--out")
    cases += _numeric("app", ["--dry-run"], {"--port": ()})
    return cases


def _paths() -> list[Case]:
    """Output paths that cannot be written, inputs that are missing or not what they claim."""
    outs = {  # command -> (argv before the output flag, output flag, writes a file?)
        "train": (["train", *TINY_TRAIN], "--out", False),
        "data-prepare": (["data", "prepare", "--tokenizer", "bytes", "--max-mb", "0.05"], "--out", False),
        "coord-check": (["coord-check", *TINY_CC], "--out", False),
        "sweep": (["sweep", *TINY_SWEEP], "--study", False),
        "transfer-check": (["transfer-check", *TINY_TC], "--out", False),
        "ladder": (["ladder", *TINY_LADDER], "--study", False),
        "export": (["export", "{W}/plan.yaml", "--trainer", "hf"], "--out", False),
        "plan": (["plan", "--flops", "1e21"], "--out", True),
        "optimal": (["optimal", "--flops", "1e21"], "--plot", True),
        "fit-out": (["fit", "{W}/runs.csv", *RUNS_COLS, "--grid", "small", "--no-backtest"], "--out", True),
        "fit-plot": (["fit", "{W}/runs.csv", *RUNS_COLS, "--grid", "small", "--no-backtest"], "--plot", True),
    }
    bad = [("existing-folder", "{W}/adir", "file"), ("under-file", "{W}/afile/x", None),
           ("proc", "/proc/foo", None), ("dotdot", "{W}/D/../E", "folder"), ("the-file", "{W}/afile", "folder"),
           ("empty", "", None)]
    cases = []
    for name, (argv, flag, is_file) in outs.items():
        for bname, path, only in bad:
            if only == "file" and not is_file:
                continue
            if only == "folder" and is_file:
                continue
            cid = f"{name}-out={bname}"
            legal = bname == "dotdot"  # D/../E is E (D need not exist); what matters is that no D is made
            cases.append(Case(cid, (*argv, flag, path), "either" if legal else "refuse", group="paths",
                              must_not_create=("D",) if legal else (),
                              fast=cid in ("sweep-out=dotdot", "train-out=existing-folder", "data-prepare-out=proc",
                                           "train-out=the-file")))
    # outputs that would overwrite something precious
    cases += [
        Case("train-out=data-folder", ("train", *TINY_TRAIN, "--out", "{W}/data"), group="paths", fast=True),
        Case("train-out=finished-other-config", ("train", *TINY_TRAIN[:-1], "3", "--out", "{W}/run"), group="paths"),
        Case("train-out=study", ("train", *TINY_TRAIN, "--out", "{W}/study"), group="paths"),
        Case("data-prepare-out=data-other-options", ("data", "prepare", "--tokenizer", "bytes", "--max-mb", "0.06",
                                                     "--out", "{W}/data"), group="paths"),
        Case("data-prepare-out=nonempty", ("data", "prepare", "--tokenizer", "bytes", "--max-mb", "0.05",
                                           "--out", "{W}/study"), group="paths"),
        Case("sweep-study=data-folder", ("sweep", *TINY_SWEEP, "--study", "{W}/data"), group="paths"),
        Case("sweep-study=run-folder", ("sweep", *TINY_SWEEP, "--study", "{W}/run"), group="paths"),
        Case("fit-out-ok-plot-bad", ("fit", "{W}/runs.csv", *RUNS_COLS, "--grid", "small", "--no-backtest",
                                     "--out", "{W}/ok.json", "--plot", "{W}/afile/x.html"), group="paths"),
        Case("export-out=afile", ("export", "{W}/plan.yaml", "--trainer", "megatron", "--out", "{W}/afile"),
             group="paths"),
    ]
    # inputs that are missing, folders, files, /proc
    ins = [
        ("train-data", ["train", *TINY_TRAIN[2:], "--out", "{W}/r"], "--data"),
        ("sweep-data", ["sweep", *TINY_SWEEP[2:], "--study", "{W}/s"], "--data"),
        ("coord-check-data", ["coord-check", *TINY_CC, "--out", "{W}/cc"], "--data"),
        ("ladder-data", ["ladder", *TINY_LADDER[2:], "--study", "{W}/l"], "--data"),
        ("train-hparams", ["train", *TINY_TRAIN, "--out", "{W}/r"], "--hparams"),
        ("plan-hparams", ["plan", "--flops", "1e21"], "--hparams"),
        ("optimal-law", ["optimal", "--flops", "1e21"], "--law"),
        ("loss-law", ["loss", "--params", "1e9", "--tokens", "2e10"], "--law"),
        ("plan-law", ["plan", "--flops", "1e21"], "--law"),
        ("count-hf-config", ["count"], "--hf-config"),
        ("export-flags", ["export", "{W}/plan.yaml", "--trainer", "megatron", "--out", "{W}/e"], "--flags"),
        ("data-prepare-source", ["data", "prepare", "--tokenizer", "bytes", "--out", "{W}/d"], "--source"),
        ("data-prepare-tokenizer", ["data", "prepare", "--source", "{W}/runs.csv", "--out", "{W}/d"], "--tokenizer"),
    ]
    for name, argv, flag in ins:
        for bname, path in [("missing", "{W}/nope"), ("folder", "{W}/adir"), ("proc", "/proc/self/mem"),
                            ("devnull", "/dev/null")]:
            cases.append(Case(f"{name}={bname}", (*argv, flag, path), group="paths"))
    cases += [
        Case("export-plan=missing", ("export", "{W}/nope.yaml", "--trainer", "hf", "--out", "{W}/e"), group="paths"),
        Case("export-plan=folder", ("export", "{W}/adir", "--trainer", "hf", "--out", "{W}/e"), group="paths"),
        Case("export-plan=devnull", ("export", "/dev/null", "--trainer", "hf", "--out", "{W}/e"), group="paths"),
        Case("fit-runs=folder", ("fit", "{W}/adir", *RUNS_COLS), group="paths"),
        Case("fit-runs=devnull", ("fit", "/dev/null", *RUNS_COLS), group="paths"),
        Case("sweep-export-study=missing", ("sweep", "export", "--study", "{W}/nope"), group="paths"),
        Case("sweep-export-study=file", ("sweep", "export", "--study", "{W}/afile"), group="paths"),
        Case("app-studies=file", ("app", "--dry-run", "--studies", "{W}/afile"), group="paths"),
    ]
    return cases


# ---------------------------------------------------------------------------------- hostile artefacts
def alias_bomb(levels: int = 9, key: str = "meta") -> str:
    """A "billion laughs" YAML mapping under ``key``: 9 levels of 9 aliases = 9^9 values."""
    lines = [f"{key}:", '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"  a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_YAML = "a: " + "[" * 5000 + "]" * 5000 + "\n"
BIG_INT = "1" + "0" * 5000
GOOD_HPARAMS = ("parameterization: mup\nbase_width: 32\nbase_depth: 1\nbase_head_dim: 16\n"
                "lr: 0.0078\ninit_std: 0.02\n")


#: hparams.yaml variants that train may accept: TINY_TRAIN's explicit --head-dim wins over the file's.
LEGAL_FOR_TRAIN = ("base-head-dim-odd",)


def _hparams_variants() -> dict[str, str]:
    return {
        "base-head-dim-text": GOOD_HPARAMS.replace("base_head_dim: 16", "base_head_dim: abc"),
        "base-head-dim-odd": GOOD_HPARAMS.replace("base_head_dim: 16", "base_head_dim: 15"),
        "betas-scalar": GOOD_HPARAMS + "betas: 5\n",
        "betas-three": GOOD_HPARAMS + "betas: [0.9, 0.95, 0.99]\n",
        "betas-one": GOOD_HPARAMS + "betas: [0.9, 1.0]\n",
        "warmup-text": GOOD_HPARAMS + "warmup_frac: abc\n",
        "warmup-above-1": GOOD_HPARAMS + "warmup_frac: 3\n",
        "readout-no-string": GOOD_HPARAMS + "readout_zero_init: 'no'\n",
        "lr-huge": GOOD_HPARAMS.replace("lr: 0.0078", "lr: 1.0e+300"),
        "lr-nan": GOOD_HPARAMS.replace("lr: 0.0078", "lr: .nan"),
        "lr-inf": GOOD_HPARAMS.replace("lr: 0.0078", "lr: .inf"),
        "lr-bool": GOOD_HPARAMS.replace("lr: 0.0078", "lr: true"),
        "lr-list": GOOD_HPARAMS.replace("lr: 0.0078", "lr: [1, 2]"),
        "base-width-huge-int": GOOD_HPARAMS.replace("base_width: 32", f"base_width: {'9' * 40}"),
        "base-width-1e30": GOOD_HPARAMS.replace("base_width: 32", "base_width: 1.0e+30"),
        "param-unknown": GOOD_HPARAMS.replace("parameterization: mup", "parameterization: ntk"),
        "unknown-key": GOOD_HPARAMS + "learning_rate: 0.1\n",
        "alias-bomb": GOOD_HPARAMS + alias_bomb(key="source"),
        "deep": GOOD_HPARAMS + "source: " + "[" * 5000 + "]" * 5000 + "\n",
        "list": "- 1\n- 2\n",
        "scalar": "42\n",
        "empty": "",
        "python-tag": GOOD_HPARAMS + "source: !!python/object/apply:os.system ['touch PWNED']\n",
        "binary": b"\xff\xfe\x00garbage",
        "vocab-text": GOOD_HPARAMS + "vocab_size: lots\n",
    }


def _fit_variants() -> dict[str, str]:
    law = '"E": 1.8, "A": 482.0, "B": 2085.0, "alpha": 0.35, "beta": 0.37'
    return {
        "E-true": "{" + law.replace('"E": 1.8', '"E": true') + "}",
        "E-zero": "{" + law.replace('"E": 1.8', '"E": 0') + "}",
        "B-zero": "{" + law.replace('"B": 2085.0', '"B": 0') + "}",
        "alpha-negative": "{" + law.replace('"alpha": 0.35', '"alpha": -0.35') + "}",
        "alpha-beta-tiny": "{" + law.replace('"alpha": 0.35', '"alpha": 0.001').replace('"beta": 0.37',
                                                                                         '"beta": 0.001') + "}",
        "A-text": "{" + law.replace('"A": 482.0', '"A": "482"') + "}",
        "A-nan": "{" + law.replace('"A": 482.0', '"A": NaN') + "}",
        "A-infinity": "{" + law.replace('"A": 482.0', '"A": Infinity') + "}",
        "A-bigint": "{" + law.replace('"A": 482.0', f'"A": {BIG_INT}') + "}",
        "A-1e400": "{" + law.replace('"A": 482.0', '"A": 1e400') + "}",
        "deep": DEEP_JSON,
        "list": "[1, 2, 3]",
        "string": '"fit"',
        "empty": "",
        "truncated": "{" + law[:20],
        "binary": b"\xff\xfe\x00",
    }


def _meta_variants() -> dict[str, object]:
    """meta.json edits of the template's data folder (applied by hostile_pass: key -> value or a marker)."""
    return {
        "vocab-text": {"vocab_size": "lots"}, "vocab-1e12": {"vocab_size": 10**12},
        "vocab-float": {"vocab_size": 1e12}, "vocab-bigint": {"vocab_size": int("9" * 40)},
        "vocab-zero": {"vocab_size": 0}, "vocab-negative": {"vocab_size": -64}, "vocab-bool": {"vocab_size": True},
        "vocab-small": {"vocab_size": 64},  # token ids >= vocab
        "dtype-unknown": {"dtype": "float64"}, "train-tokens-text": {"train_tokens": "many"},
        "train-tokens-wrong": {"train_tokens": 5}, "val-tokens-zero": {"val_tokens": 0},
    }


def _artefacts() -> list[Case]:
    cases = []
    for name, text in _hparams_variants().items():
        hp = {"hp.yaml": text}
        fastish = name in ("alias-bomb", "readout-no-string", "base-head-dim-text")
        cases.append(Case(f"train-hparams={name}", ("train", *TINY_TRAIN, "--hparams", "{W}/hp.yaml", "--out",
                                                     "{W}/r"), "either" if name in LEGAL_FOR_TRAIN else "refuse",
                          files=hp, group="artefacts", fast=fastish))
        cases.append(Case(f"plan-hparams={name}", ("plan", "--flops", "1e21", "--hparams", "{W}/hp.yaml"), files=hp,
                          group="artefacts", fast=name == "alias-bomb"))
        if name in ("alias-bomb", "base-head-dim-text", "betas-scalar", "list", "readout-no-string", "lr-huge"):
            cases.append(Case(f"ladder-hparams={name}", ("ladder", *TINY_LADDER[:2], "--hparams", "{W}/hp.yaml",
                                                          *TINY_LADDER[4:], "--study", "{W}/l"), files=hp,
                              group="artefacts"))
    for name, text in _fit_variants().items():
        f = {"law.json": text}
        cases.append(Case(f"optimal-law={name}", ("optimal", "--flops", "1e21", "--law", "{W}/law.json"), files=f,
                          group="artefacts", fast=name in ("deep", "alpha-beta-tiny", "E-true")))
        cases.append(Case(f"loss-law={name}", ("loss", "--params", "1e9", "--tokens", "2e10", "--law",
                                                "{W}/law.json"), files=f, group="artefacts"))
        cases.append(Case(f"plan-law={name}", ("plan", "--flops", "1e21", "--law", "{W}/law.json"), files=f,
                          group="artefacts"))
    for name, edit in _meta_variants().items():
        f = {"data/meta.json": ("meta-edit", edit)}
        cases.append(Case(f"train-meta={name}", ("train", *TINY_TRAIN, "--out", "{W}/r"), files=f, group="artefacts",
                          fast=name == "vocab-1e12"))
        if name in ("vocab-text", "vocab-1e12", "vocab-small", "train-tokens-wrong"):
            cases.append(Case(f"sweep-meta={name}", ("sweep", *TINY_SWEEP, "--study", "{W}/s"), files=f,
                              group="artefacts"))
            cases.append(Case(f"coord-check-meta={name}", ("coord-check", *TINY_CC, "--data", "{W}/data"), files=f,
                              group="artefacts"))
    raw_meta = {"list": "[]", "deep": DEEP_JSON, "bigint": '{"vocab_size": ' + BIG_INT + "}", "empty": ""}
    for name, text in raw_meta.items():
        cases.append(Case(f"train-meta-raw={name}", ("train", *TINY_TRAIN, "--out", "{W}/r"),
                          files={"data/meta.json": text}, group="artefacts"))
    cases += [
        Case("train-data=empty-train-bin", ("train", *TINY_TRAIN, "--out", "{W}/r"),
             files={"data/train.bin": ("truncate", 0)}, group="artefacts"),
        Case("train-data=short-train-bin", ("train", *TINY_TRAIN, "--out", "{W}/r"),
             files={"data/train.bin": ("truncate", 7)}, group="artefacts"),
        Case("train-data=ids-above-vocab", ("train", *TINY_TRAIN, "--out", "{W}/r"),
             files={"data/train.bin": ("fill", 0xFF)}, group="artefacts", fast=True),
        Case("train-data=tokenizer-garbage", ("train", *TINY_TRAIN, "--out", "{W}/r"),
             files={"data/tokenizer.json": "{not json"}, group="artefacts"),
        Case("train-data=meta-symlink-outside", ("train", *TINY_TRAIN, "--out", "{W}/r"),
             files={"data/meta.json": Link("/etc/passwd")}, group="artefacts"),
        Case("train-data=train-bin-is-folder", ("train", *TINY_TRAIN, "--out", "{W}/r"),
             files={"data/train.bin": ("mkdir",)}, group="artefacts"),
    ]
    # plan.yaml for export
    plan_edits = {
        "alias-bomb": ("append", alias_bomb(key="meta_bomb")),
        "deep": ("append", DEEP_YAML.replace("a: ", "deep: ")),
        "list": ("replace", "- 1\n- 2\n"),
        "empty": ("replace", ""),
        "python-tag": ("append", "x: !!python/object/apply:os.system ['touch PWNED']\n"),
        "hparams-string": ("section", "hparams", "abc"),
        "training-list": ("section", "training", [1, 2]),
        "layout-int": ("section", "layout", 5),
        "d-model-injection": ("field", "shape", "d_model", "2176\ntouch /tmp/X\n#"),
        "seq-len-injection": ("field", "training", "seq_len", "4096 if __import__('os').system('true') else 4096"),
        "micro-batch-text": ("field", "layout", "micro_batch", "1; import os"),
        "bigint": ("field", "shape", "d_model", int("9" * 40)),
        "nan": ("field", "training", "seq_len", float("nan")),
        "binary": ("replace", "\xff\xfe"),
    }
    for name, edit in plan_edits.items():
        for trainer in ("megatron", "torchtitan", "hf"):
            cid = f"export-{trainer}-plan={name}"
            cases.append(Case(cid, ("export", "{W}/p.yaml", "--trainer", trainer, "--out", "{W}/e"),
                              files={"p.yaml": ("plan-edit", edit)}, group="artefacts",
                              fast=cid in ("export-megatron-plan=d-model-injection",
                                           "export-torchtitan-plan=alias-bomb")))
        if name in ("alias-bomb", "list", "hparams-string"):
            cases.append(Case(f"export-edited-plan={name}", ("export", "{W}/p.yaml", "--trainer", "hf", "--out",
                                                              "{W}/e", "--allow-edited-plan"),
                              files={"p.yaml": ("plan-edit", edit)}, group="artefacts"))
    # study.yaml of a study: resume and export
    study_edits = {
        "alias-bomb": ("replace", alias_bomb(key="spec")), "list": ("replace", "- 1\n"),
        "spec-string": ("set", "spec", "abc"), "widths-text": ("spec", "widths", "abc"),
        "widths-huge": ("spec", "widths", [int("9" * 40)]), "steps-negative": ("spec", "steps", -5),
        "unknown-spec-key": ("spec", "bogus", 1), "empty": ("replace", ""),
        "deep": ("replace", DEEP_YAML), "storage-text": ("set", "storage", {"url": [1]}),
    }
    for name, edit in study_edits.items():
        f = {"study/study.yaml": ("yaml-edit", edit)}
        cases.append(Case(f"sweep-export-study={name}", ("sweep", "export", "--study", "{W}/study"), files=f,
                          group="artefacts", fast=name == "alias-bomb"))
        cases.append(Case(f"sweep-resume-study={name}", ("sweep", *TINY_SWEEP, "--study", "{W}/study"), files=f,
                          group="artefacts"))
    # runs tables for fit
    runs = ("run_id,total_params,tokens,final_val_loss,status\n" + "".join(
        f"r{i},{2e7 * (i + 1):.0f},{4e8 * (i + 1):.0f},{3.2 - 0.1 * i:.3f},ok\n" for i in range(9)))
    runs_variants = {
        "dup-column": runs.replace("final_val_loss,status", "final_val_loss,final_val_loss").replace(
            ",ok\n", ",9.9\n"),
        "nan": runs.replace("3.100,", "nan,"), "inf-params": runs.replace("r1,40000000,", "r1,inf,"),
        "huge": runs.replace("r1,40000000,", "r1,1e300,"), "bool": runs.replace("3.100,", "true,"),
        "negative": runs.replace("r1,40000000,", "r1,-40000000,"),
        "one-row": runs.splitlines()[0] + "\n" + runs.splitlines()[1] + "\n",
        "binary": b"\xff\xfe\x00", "empty": "",
    }
    for name, text in runs_variants.items():
        cases.append(Case(f"fit-runs={name}", ("fit", "{W}/bad.csv", *RUNS_COLS, "--grid", "small",
                                               "--no-backtest"), files={"bad.csv": text}, group="artefacts"))
    # hf config for count/loss
    hf = {"text-layers": '{"num_hidden_layers": "abc", "hidden_size": 64, "intermediate_size": 256, '
                         '"num_attention_heads": 4, "vocab_size": 1000}',
          "huge": '{"num_hidden_layers": 1e300, "hidden_size": 64, "intermediate_size": 256, '
                  '"num_attention_heads": 4, "vocab_size": 1000}',
          "bigint": '{"num_hidden_layers": ' + BIG_INT + ', "hidden_size": 64, "intermediate_size": 256, '
                    '"num_attention_heads": 4, "vocab_size": 1000}',
          "deep": DEEP_JSON, "list": "[]", "bool": '{"num_hidden_layers": true, "hidden_size": 64, '
                                                    '"intermediate_size": 256, "num_attention_heads": 4, '
                                                    '"vocab_size": 1000}'}
    for name, text in hf.items():
        cases.append(Case(f"count-hf={name}", ("count", "--hf-config", "{W}/config.json"),
                          files={"config.json": text}, group="artefacts"))
        cases.append(Case(f"loss-hf={name}", ("loss", "--hf-config", "{W}/config.json", "--tokens", "2e10"),
                          files={"config.json": text}, group="artefacts"))
    cases.append(Case("count-hf=symlink-outside", ("count", "--hf-config", "{W}/config.json"),
                      files={"config.json": Link("/etc/passwd")}, group="artefacts"))
    return cases


def _misc() -> list[Case]:
    return [
        Case("coord-check--widths=million", ("coord-check", "--widths", "32,1000000", "--steps", "2", "--seeds", "1",
                                             "--n-layers", "1", "--head-dim", "16", "--out", "{W}/cc"), fast=True),
        Case("coord-check--widths=inf", ("coord-check", *TINY_CC[2:], "--widths", "32,inf", "--out", "{W}/cc")),
        Case("sweep--widths=inf", ("sweep", *TINY_SWEEP[:2], "--widths", "inf,32", *TINY_SWEEP[4:], "--study",
                                   "{W}/s")),
        Case("transfer-check--widths=inf", ("transfer-check", *TINY_TC[:2], "--widths", "inf,32", *TINY_TC[4:],
                                            "--out", "{W}/tc")),
        Case("shape--head-dim=inf", ("shape", "--params", "1e8", "--head-dim", "inf")),
        Case("coord-check--widths=one", ("coord-check", *TINY_CC[2:], "--widths", "32", "--out", "{W}/cc")),
        Case("coord-check--widths=not-multiple", ("coord-check", *TINY_CC[2:], "--widths", "32,40", "--out",
                                                  "{W}/cc")),
        Case("coord-check--head-dim=odd", ("coord-check", "--widths", "30,60", "--steps", "2", "--seeds", "1",
                                           "--n-layers", "1", "--head-dim", "15", "--out", "{W}/cc"), fast=True),
        Case("train--head-dim=odd", ("train", "--data", "{W}/data", "--d-model", "30", "--n-layers", "1",
                                     "--head-dim", "15", *TINY_LEN, "--out", "{W}/r")),
        Case("train--heads=more-than-width", ("train", "--data", "{W}/data", "--d-model", "32", "--n-layers", "1",
                                              "--heads", "64", *TINY_LEN, "--out", "{W}/r")),
        Case("train--d-model=1e30", ("train", "--data", "{W}/data", "--d-model", "1e30", "--n-layers", "1",
                                     *TINY_LEN, "--out", "{W}/r")),
        Case("train--base-width=1e30", ("train", *TINY_TRAIN, "--base-width", "1e30", "--out", "{W}/r"), fast=True),
        Case("train--threads=100000", ("train", *TINY_TRAIN, "--threads", "100000", "--out", "{W}/r"), fast=True),
        Case("train--lr=1e300", ("train", *TINY_TRAIN, "--lr", "1e300", "--out", "{W}/r")),
        Case("train--tokens=1e300", ("train", *TINY_TRAIN[:-2], "--out", "{W}/r", "--tokens", "1e300")),
        Case("train--memory=too-big", ("train", "--data", "{W}/data", "--d-model", "65536", "--n-layers", "512",
                                       "--head-dim", "128", *TINY_LEN, "--out", "{W}/r")),
        Case("data-prepare--vocab=1e9", ("data", "prepare", "--tokenizer", "bpe", "--max-mb", "0.05", "--vocab",
                                         "1e9", "--out", "{W}/d"), fast=True),
        Case("data-prepare--vocab=256", ("data", "prepare", "--tokenizer", "bpe", "--max-mb", "0.05", "--vocab",
                                         "256", "--out", "{W}/d")),
        Case("data-prepare--source=hf-bad", ("data", "prepare", "--source", "hf:../../etc", "--out", "{W}/d")),
        Case("data-prepare--tokenizer=garbage", ("data", "prepare", "--source", "{W}/runs.csv", "--tokenizer",
                                                 "{W}/afile", "--out", "{W}/d")),
        Case("data-prepare--text-field=missing", ("data", "prepare", "--source", "{W}/c.jsonl", "--tokenizer",
                                                  "bytes", "--out", "{W}/d"), files={"c.jsonl": '{"body": "x"}\n'}),
        Case("data-prepare--source=bad-jsonl", ("data", "prepare", "--source", "{W}/c.jsonl", "--tokenizer",
                                                "bytes", "--out", "{W}/d"), files={"c.jsonl": "{oops\n[1]\n"}),
        Case("data-prepare--source=deep-jsonl", ("data", "prepare", "--source", "{W}/c.jsonl", "--tokenizer",
                                                 "bytes", "--out", "{W}/d"), files={"c.jsonl": DEEP_JSON + "\n"}),
        Case("data-prepare--source=binary-txt", ("data", "prepare", "--source", "{W}/c.txt", "--tokenizer",
                                                 "bytes", "--out", "{W}/d"), files={"c.txt": b"\xff\xfe\x00" * 10}),
        Case("data-prepare--source=empty-txt", ("data", "prepare", "--source", "{W}/c.txt", "--tokenizer",
                                                "bytes", "--out", "{W}/d"), files={"c.txt": ""}),
        Case("sweep--widths=million", ("sweep", *TINY_SWEEP[:2], "--widths", "32,1000000", *TINY_SWEEP[4:],
                                       "--study", "{W}/s")),
        Case("sweep--workers=500", ("sweep", *TINY_SWEEP, "--workers", "500", "--study", "{W}/s")),
        Case("sweep--storage=sqlite-under-file", ("sweep", *TINY_SWEEP, "--storage", "sqlite:///{W}/afile/x.db",
                                                  "--study", "{W}/s")),
        Case("sweep--objective=evil", ("sweep", *TINY_SWEEP, "--objective", "/etc/passwd:f", "--study", "{W}/s")),
        Case("sweep-resume-other-options", ("sweep", *TINY_SWEEP[:-4], "--pruner", "median", "--sampler", "tpe",
                                            "--study", "{W}/study")),
        Case("train--hparams-vocab-mismatch", ("train", *TINY_TRAIN, "--hparams", "{W}/hp.yaml", "--out", "{W}/r"),
             files={"hp.yaml": GOOD_HPARAMS + "vocab_size: 4096\n"}),
        Case("train--both-steps-tokens", ("train", *TINY_TRAIN, "--tokens", "100", "--out", "{W}/r")),
        Case("optimal--law=alpha-beta-tiny-target", ("optimal", "--target-loss", "2.5", "--law", "{W}/law.json"),
             files={"law.json": _fit_variants()["alpha-beta-tiny"]}),
        Case("plan--price=1e308", ("plan", "--flops", "1e21", "--price", "1e308")),  # plan.py: another helper
        Case("plan--flops=1e-300", ("plan", "--flops", "1e-300")),
        Case("app--host=evil", ("app", "--dry-run", "--host", "a;rm -rf /")),
        Case("app--host=all", ("app", "--dry-run", "--host", "0.0.0.0"), expect="either"),
        Case("app--port=70000", ("app", "--dry-run", "--port", "70000")),
        Case("export--flags=list", ("export", "{W}/plan.yaml", "--trainer", "megatron", "--out", "{W}/e", "--flags",
                                    "{W}/f.json"), files={"f.json": "[1]"}),
        Case("export--flags=deep", ("export", "{W}/plan.yaml", "--trainer", "megatron", "--out", "{W}/e", "--flags",
                                    "{W}/f.json"), files={"f.json": DEEP_JSON}),
        Case("loss--preset=unknown", ("loss", "--preset", "gpt-99", "--tokens", "1e9")),
        Case("count--heads=not-dividing", ("count", "--layers", "2", "--d-model", "100", "--d-ffn", "256", "--heads",
                                           "3", "--vocab", "1000")),
        Case("count--kv-heads=not-dividing", ("count", *SHAPE_ALL, "--kv-heads", "3")),
        Case("shape--aspect=inverted", ("shape", "--params", "1B", "--aspect", "300,10")),
        Case("shape--aspect=nan", ("shape", "--params", "1B", "--aspect", "nan,inf")),
        Case("shape--head-dim=huge", ("shape", "--params", "1B", "--head-dim", "1000000000")),
        Case("ladder--sizes=huge", ("ladder", *TINY_LADDER[:4], "--sizes", "1000000:1000", *TINY_LADDER[6:],
                                    "--study", "{W}/l")),
        Case("transfer-check--lrs=huge", ("transfer-check", *TINY_TC[:6], "--lrs", "1000:1002:1", *TINY_TC[8:],
                                          "--out", "{W}/tc")),
        Case("demo--study=under-file", ("demo", "--fast", "--study", "{W}/afile/demo")),
        Case("demo--study=dotdot", ("demo", "--fast", "--study", "{W}/D/../E", "--workers", "0")),
        Case("unknown-command", ("frobnicate",)),
        Case("no-args-data", ("data",)),
    ]


CASES: list[Case] = (_numbers() + _paths() + _artefacts() + _misc()
                    + new_cases.numeric_cases(_numeric, TINY_LADDER) + new_cases.misc_cases(Case))
#: The last fixes of issue 18 (plan, fit, ladder, transfer-check): one cheap case per class joins the CI subset.
_FAST_FIXED = ("plan--vocab=hugeint", "plan--lr=tiny", "plan--price=1e308", "plan-hparams=base-head-dim-odd",
               "fit--bootstrap=hugeint", "fit-runs=dup-column", "fit-runs=huge", "ladder-out=proc",
               "transfer-check-out=the-file")
CASES = [replace(c, fast=True) if c.id in _FAST_FIXED else c for c in CASES]
_ids = [c.id for c in CASES]
assert len(_ids) == len(set(_ids)), sorted({i for i in _ids if _ids.count(i) > 1})
FAST_IDS = [c.id for c in CASES if c.fast]


def case_by_id(cid: str) -> Case:
    return next(c for c in CASES if c.id == cid)

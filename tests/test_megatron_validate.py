"""planner/export/megatron_validate.py: Megatron-LM's argument rules as a pure-Python checker.

One valid argument set (TP 2, PP 2 with 2 virtual stages, SP, GQA, distributed optimizer with both
overlaps, 16 GPUs) passes; for every registered rule at least one deliberately broken variant is
flagged by that rule and only by the rules it is meant to break, so no rule can be a no-op.
"""
from __future__ import annotations

import pytest

from planner.export.megatron_validate import MEGATRON_COMMIT, RULES, megatron_arg_problems, split_weights

WORLD = 16  # TP 2 x PP 2 x DP 4
ENV = {"CUDA_DEVICE_MAX_CONNECTIONS": "1"}
GOOD = {
    "--tensor-model-parallel-size": "2", "--pipeline-model-parallel-size": "2", "--context-parallel-size": "1",
    "--num-virtual-stages-per-pipeline-rank": "2", "--sequence-parallel": True,
    "--use-distributed-optimizer": True, "--overlap-grad-reduce": True, "--overlap-param-gather": True,
    "--num-layers": "24", "--hidden-size": "2048", "--ffn-hidden-size": "5632", "--num-attention-heads": "16",
    "--group-query-attention": True, "--num-query-groups": "4", "--seq-length": "4096",
    "--max-position-embeddings": "4096", "--micro-batch-size": "2", "--global-batch-size": "64",
    "--train-iters": "1000", "--lr": "3e-4", "--min-lr": "3e-5", "--lr-decay-style": "cosine",
    "--lr-decay-iters": "1000", "--lr-warmup-iters": "100", "--save": "/ckpt", "--load": "/ckpt",
    "--save-interval": "200", "--data-path": ["/data/x"], "--split": "99,1,0", "--eval-interval": "100",
    "--eval-iters": "4", "--log-interval": "10", "--tensorboard-dir": "/tb", "--log-timers-to-tensorboard": True,
    "--recompute-activations": True, "--recompute-granularity": "selective", "--bf16": True,
    "--untie-embeddings-and-output-weights": True, "--check-for-spiky-loss": True,
}
DROP = object()

#: (rule(s) that must fire, and no other, changes to GOOD (DROP removes a flag), world size, env)
BROKEN = [
    ({"world-size"}, {}, 18, ENV),
    ({"micro-batches"}, {"--global-batch-size": "60"}, WORLD, ENV),  # 60 % (2 x DP 4)
    ({"micro-batches"}, {"--micro-batch-size": DROP}, WORLD, ENV),
    ({"micro-batches"}, {"--eval-micro-batch-size": "3"}, WORLD, ENV),  # eval GBS 64 % (3 x 4)
    ({"pipeline-split"}, {"--num-layers": "26"}, WORLD, ENV),  # 26 % PP 2 = 0 but 13 % VPP 2
    ({"pipeline-split"}, {"--num-layers": "25"}, WORLD, ENV),
    ({"pipeline-split"}, {"--num-layers-per-virtual-pipeline-stage": "6"}, WORLD, ENV),  # two VPP flags
    ({"pipeline-split"}, {"--num-virtual-stages-per-pipeline-rank": DROP,
                          "--num-layers-per-virtual-pipeline-stage": "5"}, WORLD, ENV),
    ({"interleaved-schedule"}, {"--pipeline-model-parallel-size": "1"}, WORLD, ENV),
    ({"interleaved-schedule"}, {"--no-overlap-p2p-communication": True}, WORLD, ENV),  # PP 2 needs > 2 then
    ({"sequence-parallel"}, {"--tensor-model-parallel-size": "1"}, WORLD, {}),  # TP 1, CP 1: any env
    ({"sequence-parallel"}, {"--seq-length": "4095"}, WORLD, ENV),
    ({"overlap-param-gather"}, {"--use-distributed-optimizer": DROP}, WORLD, ENV),
    ({"overlap-param-gather"}, {"--overlap-grad-reduce": DROP}, WORLD, ENV),
    ({"torch-fsdp2"}, {"--use-torch-fsdp2": True}, WORLD, ENV),
    ({"cuda-device-max-connections"}, {}, WORLD, {}),
    ({"precision"}, {"--fp16": True}, WORLD, ENV),
    ({"required"}, {"--max-position-embeddings": DROP}, WORLD, ENV),
    ({"required"}, {"--hidden-size": DROP}, WORLD, ENV),
    ({"sequence-length"}, {"--max-position-embeddings": "2048"}, WORLD, ENV),
    ({"sequence-length", "sequence-parallel"}, {"--context-parallel-size": "2", "--seq-length": "4094"}, WORLD, ENV),
    ({"attention-heads"}, {"--num-attention-heads": "15", "--kv-channels": "128", "--num-query-groups": "5"},
     WORLD, ENV),
    ({"attention-heads"}, {"--num-query-groups": "3"}, WORLD, ENV),
    ({"attention-heads"}, {"--num-attention-heads": "20", "--kv-channels": "128", "--num-query-groups": "8"},
     WORLD, ENV),  # 20 heads % 8 groups
    ({"attention-heads"}, {"--group-query-attention": DROP}, WORLD, ENV),
    ({"attention-heads"}, {"--hidden-size": "2056"}, WORLD, ENV),  # 2056 % 16 heads, no --kv-channels
    ({"ffn-tp"}, {"--ffn-hidden-size": "5631"}, WORLD, ENV),
    ({"recompute"}, {"--recompute-method": "uniform"}, WORLD, ENV),
    ({"recompute"}, {"--recompute-activations": DROP, "--recompute-granularity": "full"}, WORLD, ENV),
    ({"mup"}, {"--mup-base-hidden-size": "256"}, WORLD, ENV),
    ({"mup"}, {"--use-mup": True, "--mup-base-hidden-size": "0"}, WORLD, ENV),
    ({"iteration-schedule"}, {"--train-iters": DROP}, WORLD, ENV),
    ({"iteration-schedule"}, {"--lr-decay-samples": "64000"}, WORLD, ENV),
    ({"iteration-schedule"}, {"--lr-warmup-fraction": "0.01"}, WORLD, ENV),
    ({"lr-schedule"}, {"--min-lr": "1e-3"}, WORLD, ENV),
    ({"lr-schedule"}, {"--lr-warmup-iters": "1000"}, WORLD, ENV),
    ({"lr-schedule"}, {"--lr-decay-style": "WSD"}, WORLD, ENV),
    ({"lr-schedule"}, {"--lr-decay-iters": "0"}, WORLD, ENV),
    ({"checkpointing"}, {"--save-interval": DROP}, WORLD, ENV),
    ({"checkpointing"}, {"--save-retain-interval": "300"}, WORLD, ENV),
    ({"validation"}, {"--eval-iters": "0"}, WORLD, ENV),
    ({"validation"}, {"--eval-interval": DROP}, WORLD, ENV),
    ({"validation"}, {"--split": "1,0,0"}, WORLD, ENV),
    ({"validation"}, {"--split": "98,1,1,1"}, WORLD, ENV),
    ({"validation"}, {"--valid-data-path": ["/v"]}, WORLD, ENV),  # two data sources
    ({"logging"}, {"--log-interval": "0"}, WORLD, ENV),
    ({"logging"}, {"--tensorboard-dir": DROP}, WORLD, ENV),
    ({"logging"}, {"--log-memory-interval": "15"}, WORLD, ENV),
    ({"loss-checks"}, {"--no-check-for-nan-in-loss-and-grad": True}, WORLD, ENV),
]


def _with(changes):
    out = dict(GOOD)
    for k, v in changes.items():
        if v is DROP:
            out.pop(k)
        else:
            out[k] = v
    return out


def _rules_fired(problems):
    return {p.split(":", 1)[0] for p in problems}


def test_a_valid_argument_set_passes():
    assert megatron_arg_problems(GOOD, WORLD, env=ENV) == []
    assert megatron_arg_problems(list(GOOD.items()), WORLD, env=ENV) == []  # build_args' pairs work too
    assert megatron_arg_problems(GOOD, WORLD) == []  # env rules only when an env is given


@pytest.mark.parametrize("rules, changes, world, env", BROKEN,
                         ids=[f"{sorted(r)[0]}-{i}" for i, (r, *_) in enumerate(BROKEN)])
def test_each_broken_argument_set_is_flagged_by_its_rule(rules, changes, world, env):
    problems = megatron_arg_problems(_with(changes), world, env=env)
    assert _rules_fired(problems) == rules, problems
    for p in problems:  # every message names what to change and cites Megatron-LM at the commit
        assert ";" in p and f"@ {MEGATRON_COMMIT[:8]}]" in p and "::" in p


def test_every_rule_has_a_broken_case_and_a_citation():
    covered = set().union(*(r for r, *_ in BROKEN))
    assert {r.name for r in RULES} == covered
    for r in RULES:
        assert "::" in r.source and " L" in r.source, r.name
        assert r.check.__doc__, r.name  # the rule says what Megatron enforces


def test_valid_fsdp2_arguments_pass_and_need_the_environment_unset():
    fsdp = _with({"--pipeline-model-parallel-size": "1", "--num-virtual-stages-per-pipeline-rank": DROP,
                  "--use-distributed-optimizer": DROP, "--overlap-param-gather": DROP, "--overlap-grad-reduce": DROP,
                  "--use-torch-fsdp2": True, "--no-gradient-accumulation-fusion": True, "--ckpt-format": "torch_dist"})
    assert megatron_arg_problems(fsdp, WORLD, env={"CUDA_DEVICE_MAX_CONNECTIONS": None}) == []
    flagged = megatron_arg_problems(fsdp, WORLD, env=ENV)
    assert _rules_fired(flagged) == {"torch-fsdp2"} and "CUDA_DEVICE_MAX_CONNECTIONS=1" in flagged[0]
    tied = megatron_arg_problems({k: v for k, v in fsdp.items() if k != "--untie-embeddings-and-output-weights"},
                                 WORLD)
    assert _rules_fired(tied) == {"torch-fsdp2"} and "--untie-embeddings-and-output-weights" in tied[0]


def test_unreadable_values_are_problems_not_crashes():
    problems = megatron_arg_problems(_with({"--num-layers": "many", "--tensor-model-parallel-size": True}), WORLD)
    assert any("--num-layers expects int" in p for p in problems)
    assert any("--tensor-model-parallel-size needs one int" in p for p in problems)
    with pytest.raises(ValueError, match="world_size"):
        megatron_arg_problems(GOOD, 0)


def test_placeholders_and_defaults():
    # None = a path the launch script fills in; absent flags take Megatron's defaults (TP 1, GBS = mbs x DP)
    minimal = {"--num-layers": 4, "--hidden-size": 256, "--num-attention-heads": 4, "--max-position-embeddings": 512,
               "--seq-length": 512, "--micro-batch-size": 1, "--train-iters": 10, "--lr": 1e-3, "--save": None,
               "--save-interval": 5, "--data-path": None, "--split": "99,1,0", "--eval-interval": 5}
    assert megatron_arg_problems(minimal, 3) == []
    assert split_weights("99,1,0") == [99.0, 1.0, 0.0] and split_weights("1") == [1.0, 0.0, 0.0]
    assert split_weights("0,0,0") is None and split_weights("1,1,1,1") is None

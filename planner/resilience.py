"""Checkpoints and failures: checkpoint size, write time, interval, disk for retention, goodput.

Pure arithmetic (stdlib only). Units: bytes, bytes/s, seconds; MTBFs in hours as reported.

Checkpoint content (Megatron-LM distributed checkpoint, ``--ckpt-format torch_dist`` with the
distributed optimizer; read at NVIDIA/Megatron-LM commit d98e8a6): the model's sharded state dict
holds the weights in their training dtype (bf16, 2 bytes), and
``megatron/core/optimizer/distrib_optimizer.py::_get_main_param_and_optimizer_states`` adds per
parameter the fp32 main copy ("param", 4 bytes) and each optimizer state tensor in fp32: Adam's
``exp_avg`` and ``exp_avg_sq`` (4 + 4), Lion's ``exp_avg`` only. So Adam: 2 + 4 + 4 + 4 = 14 bytes
per parameter. FSDP2 with PyTorch DCP (torchtitan) keeps fp32 sharded parameters that are the master
copy: pass ``weights_dtype_bytes=4, master_bytes=0`` for its 12 bytes. Every rank writes its shard
(fully parallel save), so a rank writes ``checkpoint_bytes / n_ranks``.

Interval. Young 1974 ("A first order approximation to the optimum checkpoint interval", CACM
17(9)): tau = sqrt(2 delta M), with delta the time to write a checkpoint and M the mean time between
failures. Daly 2006 ("A higher order estimate of the optimum checkpoint interval for restart
dumps", FGCS 22(3)): tau = sqrt(2 delta M) [1 + (delta/2M)^(1/2)/3 + (delta/2M)/9] - delta for
delta < 2M, and tau = M for delta >= 2M. tau is compute time between the ends of two writes.

Goodput. Daly 2006's expected wall time for T_s seconds of work under Poisson failures (rate 1/M),
checkpoints every tau, write delta, restart R: T_w = M e^(R/M) (e^((tau+delta)/M) - 1) T_s / tau.
Goodput = T_s / T_w, in (0, 1]. To first order it is the standard expected waste:
(tau/(tau+delta)) (1 - (R + (tau+delta)/2)/M): a write every period, and per failure a restart plus
half a period of lost work on average.

Failures are independent, so a job on n nodes fails at n times a node's rate: M_job = M_node / n.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from planner.errors import UserError
from planner.schema import check_record

GB = 10**9
SECONDS_PER_HOUR = 3600.0

#: Llama 3 (Dubey et al. 2024, "The Llama 3 Herd of Models", §3.3.4 and Table 5): in a 54-day
#: snapshot of 405B pre-training on 16,384 H100s, 466 job interruptions, 47 planned and 419
#: unexpected; 8 GPUs per server (§3.3.1), so 2,048 nodes.
LLAMA3_SNAPSHOT_DAYS = 54
LLAMA3_UNEXPECTED_INTERRUPTIONS = 419
LLAMA3_GPUS = 16_384
LLAMA3_GPUS_PER_NODE = 8
LLAMA3_NODES = LLAMA3_GPUS // LLAMA3_GPUS_PER_NODE
#: Mean hours between unexpected interruptions per node, from that snapshot: 54 x 24 x 2048 / 419
#: = 6334.6 hours (~264 days). Job MTBF on 2,048 nodes: 3.09 hours.
DEFAULT_NODE_MTBF_HOURS = LLAMA3_SNAPSHOT_DAYS * 24 * LLAMA3_NODES / LLAMA3_UNEXPECTED_INTERRUPTIONS
#: Aggregate checkpoint write bandwidth, bytes/s: 1 GB/s. An assumption, deliberately conservative;
#: pass the bandwidth you measured. For scale: an FSx for Lustre PERSISTENT_2 file system delivers
#: 125, 250, 500 or 1000 MB/s per TiB provisioned (AWS FSx for Lustre User Guide, "Managing
#: throughput capacity"), so 1 GB/s is 8 TiB at the lowest tier; IBM/PyTorch measured an average
#: 148.8 s synchronous checkpoint of a 7B model (pytorch.org/blog/reducing-checkpointing-times);
#: Llama 3's Tectonic sustained 2 TB/s for 16K GPUs (Dubey et al. 2024, §3.3.1).
DEFAULT_FS_BANDWIDTH = 1.0 * GB
#: Seconds to requeue, re-initialise (NCCL, data loaders) and resume after a failure, not counting
#: the checkpoint read (added at ``fs_bandwidth``): 10 minutes, an assumption; pass your measured
#: value. FlashRecovery (arXiv 2509.03047) reports 150 s on 4,800 devices with a purpose-built
#: recovery system, a lower bound for an ordinary requeue.
DEFAULT_RESTART_SECONDS = 600.0
#: Checkpoints kept (the newest k): torchtitan's ``checkpoint.keep_latest_k`` default, 10, chosen
#: there "to avoid filling up the disk" (torchtitan JobConfig, Checkpoint.keep_latest_k).
DEFAULT_KEEP = 10
#: Goodput below this is flagged: Llama 3 kept "higher than 90% effective training time" at 16K
#: GPUs (Dubey et al. 2024, §3.3.4).
GOODPUT_WARNING = 0.90
#: fp32 optimizer state tensors per parameter (Megatron's distributed optimizer, module docstring).
OPTIMIZER_STATES = {"adam": 2, "adamw": 2, "lion": 1, "none": 0}

SOURCES = {
    "checkpoint_bytes": "Megatron-LM torch_dist checkpoint: bf16 weights + fp32 main param + fp32 "
                        "optimizer states (distrib_optimizer.py, commit d98e8a6)",
    "interval": "Daly 2006, FGCS 22(3) higher-order optimum; Young 1974, CACM 17(9) to first order",
    "goodput": "Daly 2006 expected wall time under Poisson failures",
    "node_mtbf": "Llama 3 (Dubey et al. 2024 §3.3.4): 419 unexpected interruptions in 54 days on 2,048 nodes",
    "fs_bandwidth": "assumption (1 GB/s aggregate), override with your measured write bandwidth",
    "restart": "assumption (10 min requeue + init, plus reading the checkpoint back)",
    "keep": "torchtitan checkpoint.keep_latest_k default (10)",
}


def _number(x: Any, what: str, fix: str, *, allow_zero: bool = False) -> float:
    """``x`` as a finite float > 0 (>= 0 with ``allow_zero``), else a UserError naming the fix."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise UserError(f"{what} must be a number, got {x!r}; {fix}")
    v = float(x)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise UserError(f"{what} must be a finite number {bound}, got {x!r}; {fix}")
    return v


def _count(x: Any, what: str, fix: str) -> int:
    """``x`` as an int >= 1 (never a bool or a float), else a UserError."""
    if isinstance(x, bool) or not isinstance(x, int) or x < 1:
        raise UserError(f"{what} must be a whole number >= 1, got {x!r}; {fix}")
    return x


# ------------------------------------------------------------------------------------------ sizes
def checkpoint_bytes(total_params: float, *, optimizer: str = "adam", weights_dtype_bytes: float = 2,
                     master_bytes: float = 4, state_bytes: float = 4) -> float:
    """Bytes of one full checkpoint: params x (weights + master + states x state bytes).

    Defaults: Megatron's bf16 + distributed-optimizer Adam checkpoint, 14 bytes per parameter.
    """
    n = _number(total_params, "total parameters", "pass the model's parameter count, e.g. 7e9")
    if optimizer not in OPTIMIZER_STATES:
        raise UserError(f"optimizer must be one of {', '.join(OPTIMIZER_STATES)}, got {optimizer!r}; "
                        "pick the optimizer whose state the checkpoint holds")
    w = _number(weights_dtype_bytes, "weight bytes per parameter", "bf16 is 2, fp32 is 4")
    m = _number(master_bytes, "master-weight bytes per parameter", "fp32 is 4; 0 without a master copy",
                allow_zero=True)
    s = _number(state_bytes, "optimizer-state bytes per value", "fp32 is 4")
    return n * (w + m + OPTIMIZER_STATES[optimizer] * s)


def shard_bytes(total_bytes: float, n_ranks: int) -> float:
    """Bytes each of ``n_ranks`` ranks writes when the checkpoint is saved fully in parallel."""
    t = _number(total_bytes, "checkpoint bytes", "pass checkpoint_bytes(...)")
    return t / _count(n_ranks, "ranks writing", "pass the number of ranks that save (usually all GPUs)")


# ---------------------------------------------------------------------------------- failures and interval
def job_mtbf_hours(node_mtbf_hours: float, n_nodes: int) -> float:
    """Mean hours between failures of a job on ``n_nodes`` nodes failing independently: M_node / n."""
    m = _number(node_mtbf_hours, "node MTBF (hours)", "pass the mean hours between failures of one node")
    return m / _count(n_nodes, "nodes", "pass how many nodes the job spans")


def young_interval(checkpoint_seconds: float, mtbf_seconds: float) -> float:
    """Young 1974's first-order optimum: sqrt(2 delta M) seconds of work between checkpoints."""
    d = _number(checkpoint_seconds, "checkpoint write time (s)", "pass the seconds one save takes")
    m = _number(mtbf_seconds, "MTBF (s)", "pass the job's mean seconds between failures")
    return math.sqrt(2.0 * d * m)


def young_daly_interval(checkpoint_seconds: float, mtbf_seconds: float) -> float:
    """Daly 2006's higher-order optimum (module docstring); M when the write takes 2M or longer."""
    d = _number(checkpoint_seconds, "checkpoint write time (s)", "pass the seconds one save takes")
    m = _number(mtbf_seconds, "MTBF (s)", "pass the job's mean seconds between failures")
    if d >= 2.0 * m:
        return m
    r = d / (2.0 * m)
    return math.sqrt(2.0 * d * m) * (1.0 + math.sqrt(r) / 3.0 + r / 9.0) - d


def expected_goodput(interval_seconds: float, checkpoint_seconds: float, restart_seconds: float,
                     mtbf_seconds: float) -> float:
    """Useful fraction of wall time, Daly 2006: tau / (M e^(R/M) (e^((tau+delta)/M) - 1)).

    Computed in logs so that a hopeless plan gives a tiny goodput (0.0 beyond float range), not an
    overflow.
    """
    tau = _number(interval_seconds, "checkpoint interval (s)", "pass the seconds of work between saves")
    d = _number(checkpoint_seconds, "checkpoint write time (s)", "pass the seconds one save takes (0: free)",
                allow_zero=True)
    r = _number(restart_seconds, "restart time (s)", "pass the seconds a restart takes", allow_zero=True)
    m = _number(mtbf_seconds, "MTBF (s)", "pass the job's mean seconds between failures")
    x = (tau + d) / m
    log_expm1 = math.log(math.expm1(x)) if x < 30.0 else x + math.log1p(-math.exp(-x))
    return min(1.0, math.exp(math.log(tau) - math.log(m) - r / m - log_expm1))


def disk_needed(ckpt_bytes: float, n_checkpoints: int, keep: int, archive_every: int | None = None) -> float:
    """Bytes on disk at the end of a run that saves ``n_checkpoints`` times.

    The newest ``keep`` stay, plus the one being written before the oldest is purged (torchtitan's
    components/checkpoint.py purges after ``dcp_save`` returns), plus, with ``archive_every`` = n,
    every n-th checkpoint kept for good (counted in full: an upper bound when some of them are also
    among the newest).
    """
    b = _number(ckpt_bytes, "checkpoint bytes", "pass checkpoint_bytes(...)")
    n = _count(n_checkpoints, "checkpoints saved", "pass how many saves the run makes")
    k = _count(keep, "checkpoints kept", "keep at least 1 (2 or more is safer)")
    archived = 0 if archive_every is None else n // _count(archive_every, "archive_every",
                                                           "pass n to keep every n-th checkpoint, or None")
    return b * (min(k + 1, n) + archived)


# ------------------------------------------------------------------------------------------ the plan
@dataclass(frozen=True, kw_only=True)
class CheckpointPlan:
    """How often to checkpoint, what it costs and what disk it needs (bytes, seconds, hours)."""

    checkpoint_bytes: float  # one full checkpoint
    n_ranks: int  # ranks writing in parallel
    bytes_per_rank: float
    fs_bandwidth: float  # aggregate write bandwidth, bytes/s
    write_seconds: float  # checkpoint_bytes / fs_bandwidth
    node_mtbf_hours: float
    n_nodes: int
    job_mtbf_hours: float  # node_mtbf_hours / n_nodes
    step_seconds: float  # one optimizer step
    train_seconds: float  # failure-free training time (the time estimate)
    optimal_interval_seconds: float  # Daly 2006's optimum for write_seconds and job_mtbf_hours
    interval_steps: int  # optimizer steps between checkpoints (the optimum rounded, or as given), >= 1
    interval_seconds: float  # interval_steps x step_seconds: what the plan uses
    restart_seconds: float  # requeue + init; the checkpoint read is added at fs_bandwidth
    keep: int  # newest checkpoints kept
    archive_every: int | None = None  # every n-th checkpoint also kept for good
    n_checkpoints: int  # saves over the run
    disk_needed_bytes: float
    disk_bytes: float | None = None  # the disk given, if any
    goodput: float  # useful fraction of wall time
    expected_failures: float  # over the whole run
    expected_lost_hours: float  # writes + lost work + restarts: add to the time estimate
    sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sources"] = dict(self.sources)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "checkpoints", fix: str = "fix the value") -> "CheckpointPlan":
        """Inverse of :meth:`to_dict`, every field checked (planner.schema)."""
        positive = ("checkpoint_bytes", "n_ranks", "bytes_per_rank", "fs_bandwidth", "write_seconds",
                    "node_mtbf_hours", "n_nodes", "job_mtbf_hours", "step_seconds", "train_seconds",
                    "optimal_interval_seconds", "interval_steps", "interval_seconds", "keep", "archive_every",
                    "n_checkpoints", "disk_needed_bytes", "disk_bytes")
        rules = {**dict.fromkeys(positive, "positive"), "goodput": "fraction",
                 **dict.fromkeys(("restart_seconds", "expected_failures", "expected_lost_hours"), "nonneg")}
        return cls(**check_record(cls, d, where, fix=fix, rules=rules))

    def warnings(self) -> list[str]:
        """Problems a pretraining lead should fix before launch, each with numbers and what to do."""
        out = []
        if self.disk_bytes is not None and self.disk_bytes < self.disk_needed_bytes:
            out.append(self._disk_warning())
        if self.interval_seconds < self.write_seconds:
            out.append(
                f"checkpoint interval too short: {self.interval_steps} step(s) = {self.interval_seconds:,.0f} s "
                f"of training between saves, but one save takes {self.write_seconds:,.0f} s "
                f"({self.checkpoint_bytes / GB:,.1f} GB at {self.fs_bandwidth / GB:,.2f} GB/s); the job would "
                "spend more time saving than training: save less often, use asynchronous checkpointing, "
                "or faster storage")
        if self.goodput < GOODPUT_WARNING:
            out.append(
                f"expected goodput {self.goodput:.1%} is below {GOODPUT_WARNING:.0%} (Llama 3 kept above 90% "
                f"on 16K GPUs): with a failure every {self.job_mtbf_hours:,.1f} h and {self.write_seconds:,.0f} s "
                f"per save, failures and saves cost {self.expected_lost_hours:,.1f} h; measure and raise "
                "fs_bandwidth, checkpoint asynchronously, shorten restarts, or use fewer, more reliable nodes")
        return out


    def _disk_warning(self) -> str:
        fits = int(self.disk_bytes // self.checkpoint_bytes)
        archived = 0 if self.archive_every is None else self.n_checkpoints // self.archive_every
        k = fits - 1 - archived  # the largest keep whose newest k + 1 being written + archived fit
        lower = f"lower keep to {k}" if k >= 1 else "no keep fits (not even 1 plus the one being written)"
        kept = (f"keeping all {self.n_checkpoints} saves" if self.keep >= self.n_checkpoints
                else f"keeping the newest {self.keep} plus the one being written")
        also = f" plus {archived} archived (every {self.archive_every}-th)" if archived else ""
        return (f"disk too small: {self.disk_bytes / GB:,.0f} GB holds {fits} checkpoint(s) of "
                f"{self.checkpoint_bytes / GB:,.1f} GB, but {kept}{also} over {self.n_checkpoints} saves needs "
                f"{self.disk_needed_bytes / GB:,.0f} GB; "
                f"add {(self.disk_needed_bytes - self.disk_bytes) / GB:,.0f} GB, {lower}, or move checkpoints "
                "off the disk as they land: a full disk fails the save and can leave no usable checkpoint")


def _sources(**defaulted: bool) -> dict[str, str]:
    """SOURCES, with "given" for each input the caller set (``defaulted[key]`` False)."""
    return {k: (v if defaulted.get(k, True) else "given") for k, v in SOURCES.items()}


def _interval_steps(write_s: float, mtbf_s: float, step_s: float, given: int | None) -> tuple[float, int]:
    """(Daly's optimum in seconds, steps): the optimum rounded to whole steps (>= 1), or the steps given."""
    tau = young_daly_interval(write_s, mtbf_s)
    if given is not None:
        return tau, _count(given, "interval_steps", "pass the optimizer steps between checkpoints, or None")
    return tau, max(1, round(tau / step_s))


def plan_checkpoints(total_params: float, *, n_gpus: int, gpus_per_node: int, step_seconds: float,
                     train_seconds: float, fs_bandwidth: float = DEFAULT_FS_BANDWIDTH,
                     node_mtbf_hours: float = DEFAULT_NODE_MTBF_HOURS,
                     restart_seconds: float = DEFAULT_RESTART_SECONDS, keep: int = DEFAULT_KEEP,
                     disk_bytes: float | None = None, interval_steps: int | None = None,
                     archive_every: int | None = None, n_ranks: int | None = None, optimizer: str = "adam",
                     weights_dtype_bytes: float = 2, master_bytes: float = 4) -> CheckpointPlan:
    """Checkpoint size, write time, interval, disk and goodput for one pretraining run.

    ``train_seconds`` is the failure-free time (e.g. planner.cost.TimeEstimate.seconds). The
    interval is Daly's optimum for the job's MTBF rounded to whole optimizer steps unless
    ``interval_steps`` is given. ``n_ranks`` (ranks writing) defaults to ``n_gpus``. A restart costs
    ``restart_seconds`` plus reading the checkpoint back at ``fs_bandwidth``.
    """
    ckpt = checkpoint_bytes(total_params, optimizer=optimizer, weights_dtype_bytes=weights_dtype_bytes,
                            master_bytes=master_bytes)
    gpus = _count(n_gpus, "n_gpus", "pass the number of GPUs the job uses")
    per_node = _count(gpus_per_node, "gpus_per_node", "pass the GPUs in one node, e.g. 8")
    ranks = gpus if n_ranks is None else _count(n_ranks, "n_ranks", "pass the ranks that save, or None")
    bw = _number(fs_bandwidth, "fs_bandwidth (bytes/s)", "pass the aggregate write bandwidth you measured")
    step_s = _number(step_seconds, "step_seconds", "pass the seconds one optimizer step takes")
    train_s = _number(train_seconds, "train_seconds", "pass the failure-free training time in seconds")
    restart = _number(restart_seconds, "restart_seconds", "pass the seconds a restart takes", allow_zero=True)
    kept = _count(keep, "keep", "keep at least 1 checkpoint (2 or more is safer)")
    disk = None if disk_bytes is None else _number(disk_bytes, "disk_bytes", "pass the disk size in bytes, or None")
    nodes = -(-gpus // per_node)
    job_h = job_mtbf_hours(node_mtbf_hours, nodes)
    write_s = ckpt / bw
    mtbf_s = job_h * SECONDS_PER_HOUR
    tau, steps = _interval_steps(write_s, mtbf_s, step_s, interval_steps)
    n_ckpt = max(1, math.floor(train_s / (steps * step_s)))
    goodput = expected_goodput(steps * step_s, write_s, restart + write_s, mtbf_s)
    wall_s = train_s / goodput if goodput > 0 else math.inf
    if not math.isfinite(wall_s):
        raise UserError(f"this run would never finish: a failure every {job_h:,.3g} h, but a save takes "
                        f"{write_s:,.3g} s and a restart {restart + write_s:,.3g} s; check fs_bandwidth "
                        "(bytes/s), node_mtbf_hours and restart_seconds")
    return CheckpointPlan(
        checkpoint_bytes=ckpt, n_ranks=ranks, bytes_per_rank=shard_bytes(ckpt, ranks), fs_bandwidth=bw,
        write_seconds=write_s, node_mtbf_hours=float(node_mtbf_hours), n_nodes=nodes, job_mtbf_hours=job_h,
        step_seconds=step_s, train_seconds=train_s, optimal_interval_seconds=tau, interval_steps=steps,
        interval_seconds=steps * step_s,
        restart_seconds=restart, keep=kept, archive_every=archive_every, n_checkpoints=n_ckpt,
        disk_needed_bytes=disk_needed(ckpt, n_ckpt, kept, archive_every), disk_bytes=disk, goodput=goodput,
        expected_failures=wall_s / mtbf_s, expected_lost_hours=(wall_s - train_s) / SECONDS_PER_HOUR,
        sources=_sources(fs_bandwidth=fs_bandwidth == DEFAULT_FS_BANDWIDTH, keep=keep == DEFAULT_KEEP,
                         node_mtbf=node_mtbf_hours == DEFAULT_NODE_MTBF_HOURS, interval=interval_steps is None,
                         restart=restart_seconds == DEFAULT_RESTART_SECONDS))

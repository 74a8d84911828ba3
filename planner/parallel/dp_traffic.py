"""Data-parallel traffic per GPU and step: what hybrid sharding saves across nodes, in bytes.

Used to say, in numbers, what a trainer without hybrid sharding (Megatron-LM) costs instead
(planner/export/megatron_flags.py). Ring collectives (NCCL's ring algorithm, Patarasuk and Yuan
2009): over a group of n ranks each rank sends (n-1)/n x M bytes for an all-gather or a
reduce-scatter of an M-byte tensor and 2 (n-1)/n x M for an all-reduce. P is the parameters one
model replica holds per rank (its TP x PP shard). Per optimizer step:

* FSDP / HSDP (torch FSDP, ``reshard_after_forward``): parameters all-gathered for the forward and
  again for the backward, gradients reduce-scattered, all in bf16 (2 bytes; FSDP mixed precision
  with ``reduce_dtype`` bf16, as fms-fsdp's ``bfSixteen`` policy): 3 x (s-1)/s x 2P within the
  shard group of s ranks. Hybrid shard adds an all-reduce of each rank's 1/s gradient shard across
  the r = DP/s replicas: 2 (r-1)/r x 2P/s. With s = GPUs per node only that all-reduce crosses nodes.
* Megatron distributed optimizer (ZeRO-1): gradients reduce-scattered from the fp32 ``main_grad``
  buffer (4 bytes; Megatron's default without ``--grad-reduce-in-bf16``) and bf16 parameters
  all-gathered: (n-1)/n x 6P over all n = DP ranks.
* DDP: an all-reduce of the fp32 gradients, 2 (n-1)/n x 4P.

Gradient accumulation does not repeat these (the reduction runs once per step; FSDP's gathers do
repeat per micro-batch unless ``no_sync``/``reshard_after_forward=False``, ignored here).
"""
from __future__ import annotations

from dataclasses import dataclass

BF16 = 2
FP32 = 4


@dataclass(frozen=True)
class Traffic:
    """Bytes one GPU sends per optimizer step: within its node and across nodes."""

    intra_node: float
    inter_node: float

    @property
    def total(self) -> float:
        return self.intra_node + self.inter_node


def _rs_or_ag(n: int, nbytes: float) -> float:
    return (n - 1) / n * nbytes if n > 1 else 0.0


def _all_reduce(n: int, nbytes: float) -> float:
    return 2 * _rs_or_ag(n, nbytes)


def _split(volume: float, group: int, gpus_per_node: int) -> Traffic:
    """A collective over ``group`` ranks: within a node when the group fits in one, else across nodes."""
    return Traffic(volume, 0.0) if group <= gpus_per_node else Traffic(0.0, volume)


def hsdp_traffic(params: float, dp: int, shard: int, gpus_per_node: int) -> Traffic:
    """FSDP over ``shard`` ranks, replicated over dp/shard groups (shard = dp: full shard)."""
    inner = _split(3 * _rs_or_ag(shard, BF16 * params), shard, gpus_per_node)
    replicas = dp // shard
    outer = _all_reduce(replicas, BF16 * params / shard)
    return Traffic(inner.intra_node, inner.inter_node + outer) if replicas > 1 else inner


def distributed_optimizer_traffic(params: float, dp: int, gpus_per_node: int) -> Traffic:
    """Megatron --use-distributed-optimizer over all ``dp`` ranks."""
    return _split(_rs_or_ag(dp, (FP32 + BF16) * params), dp, gpus_per_node)


def ddp_traffic(params: float, dp: int, gpus_per_node: int) -> Traffic:
    """Plain data parallelism: all-reduce of fp32 gradients."""
    return _split(_all_reduce(dp, FP32 * params), dp, gpus_per_node)


__all__ = ["Traffic", "hsdp_traffic", "distributed_optimizer_traffic", "ddp_traffic"]

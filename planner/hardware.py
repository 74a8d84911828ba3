"""The GPU table: peak dense BF16 throughput, memory, bandwidth and NVLink domain per accelerator.

Conventions:

* ``peak_bf16_flops`` is the *dense* BF16 tensor-core peak in FLOP/s (vendor datasheets quote
  "with sparsity" figures at 2x; we never use those). The numbers equal torchtitan 0.3.0's
  ``tools/utils.py::get_peak_flops`` where it lists the part, so MFU computed here and there agree.
* ``memory_gib`` is the device memory a training process can address, in GiB (2**30 bytes), as the
  driver reports it (``nvidia-smi`` "Total", the same as ``torch.cuda.mem_get_info()[1]``) where we
  know that figure; otherwise the vendor's marketed decimal GB converted to GiB, which is lower and
  therefore conservative. ``memory_gb_marketed`` keeps the datasheet number ("80GB", "141GB").
* ``nvlink_domain`` is how many GPUs share the fast intra-node fabric (NVLink/NVSwitch or AMD
  Infinity Fabric). Tensor parallelism should stay inside it.
* ``nvlink_bandwidth`` is the intra-domain fabric rate per GPU and per direction in bytes/s: the
  datasheet's NVLink figure is the sum of both directions (H100 SXM "900 GB/s" = 450 GB/s each
  way). ``network_bandwidth`` is the scale-out (InfiniBand/RoCE) rate per GPU per direction of the
  vendor's reference 8-GPU system: DGX H100/H200/B200 have one 400 Gb/s ConnectX-7 port per GPU
  (50 GB/s), DGX A100 one 200 Gb/s HDR port per GPU (25 GB/s). Both are line rates; what NCCL
  achieves on them is planner/parallel/throughput.py's business. ``interconnect_source`` cites them.
* Price is *not* a hardware spec: it depends on the contract. ``DEFAULT_PRICE_PER_GPU_HOUR`` is a
  placeholder the user is expected to override (``--price``); the planner says so in its output.
* ``default_mfu`` is a planning prior (model FLOPs utilisation), see planner/cost.py for sources.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from planner.errors import UserError

GIB = 2**30
GB = 10**9

#: US$ per GPU-hour used when the user gives no price. A round placeholder, not a market quote:
#: cloud list prices for an H100 ranged from about $2 to $12 per GPU-hour in 2024-2025 depending
#: on provider and commitment. Always pass the price you actually pay.
DEFAULT_PRICE_PER_GPU_HOUR = 2.0


@dataclass(frozen=True)
class GPU:
    """One accelerator model. All rates per GPU; see the module docstring for conventions."""

    name: str
    peak_bf16_flops: float  # dense BF16 tensor-core FLOP/s
    memory_gib: float  # addressable device memory, GiB
    memory_gb_marketed: float  # the datasheet's "GB" figure
    memory_bandwidth: float  # bytes/s (HBM or GDDR)
    nvlink_domain: int  # GPUs on one NVLink/NVSwitch (or Infinity Fabric) domain
    default_mfu: float  # planning prior, see planner/cost.py
    nvlink_bandwidth: float  # bytes/s per GPU per direction inside the NVLink domain
    network_bandwidth: float  # bytes/s per GPU per direction between nodes (InfiniBand/RoCE)
    interconnect_source: str
    source: str
    aliases: tuple[str, ...] = field(default=(), compare=False)

    @property
    def memory_bytes(self) -> int:
        return int(round(self.memory_gib * GIB))

    @property
    def memory_gb(self) -> float:
        """Addressable memory in decimal GB (10**9 bytes)."""
        return self.memory_bytes / GB

    @property
    def gpus_per_node(self) -> int:
        """Alias of ``nvlink_domain``: the largest tensor-parallel group we recommend."""
        return self.nvlink_domain

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["aliases"] = list(self.aliases)
        d["memory_bytes"] = self.memory_bytes
        return d


def _gib_from_mib(mib: int) -> float:
    return mib / 1024


def _gib_from_gb(gb: float) -> float:
    return gb * GB / GIB


_TORCHTITAN = "torchtitan 0.3.0 tools/utils.py::get_peak_flops"
_GBIT = 1e9 / 8  # bytes/s per Gb/s
_NDR = "one 400 Gb/s NDR ConnectX-7 port per GPU"

GPUS: dict[str, GPU] = {
    g.name: g
    for g in [
        GPU(
            name="H100-SXM", peak_bf16_flops=989e12, memory_gib=_gib_from_mib(81559), memory_gb_marketed=80,
            memory_bandwidth=3.35e12, nvlink_domain=8, default_mfu=0.40,
            nvlink_bandwidth=450e9, network_bandwidth=400 * _GBIT,
            interconnect_source=(f"NVIDIA H100 datasheet: NVLink 900 GB/s (both directions) = 450 GB/s each way; DGX H100 "
                                 f"datasheet: 8x ConnectX-7 400 Gb/s = {_NDR}"),
            source=f"NVIDIA H100 Tensor Core GPU datasheet (SXM5: BF16 1,979 TFLOPS with sparsity = 989 dense, "
                   f"80GB HBM3, 3.35 TB/s, NVLink 900 GB/s, HGX 8-GPU); {_TORCHTITAN}; nvidia-smi reports 81,559 MiB",
            aliases=("h100", "h100-sxm5", "h100-80gb", "h100 sxm"),
        ),
        GPU(
            name="H100-PCIe", peak_bf16_flops=756e12, memory_gib=_gib_from_mib(81559), memory_gb_marketed=80,
            memory_bandwidth=2.0e12, nvlink_domain=2, default_mfu=0.35,
            nvlink_bandwidth=300e9, network_bandwidth=200 * _GBIT,
            interconnect_source=("NVIDIA H100 datasheet (PCIe): NVLink bridge 600 GB/s between a pair = 300 GB/s each way; no "
                                 "NVIDIA reference system for the network: we assume one 200 Gb/s port per GPU (as DGX A100), an "
                                 "assumption"),
            source=f"NVIDIA H100 datasheet (PCIe: BF16 1,513 TFLOPS with sparsity = 756 dense, 80GB HBM2e, "
                   f"2 TB/s, NVLink bridge pairs two cards); {_TORCHTITAN}",
            aliases=("h100-pcie", "h100 pcie"),
        ),
        GPU(
            name="H200", peak_bf16_flops=989e12, memory_gib=_gib_from_mib(143771), memory_gb_marketed=141,
            memory_bandwidth=4.8e12, nvlink_domain=8, default_mfu=0.40,
            nvlink_bandwidth=450e9, network_bandwidth=400 * _GBIT,
            interconnect_source=(f"NVIDIA H200 datasheet: NVLink 900 GB/s = 450 GB/s each way; DGX H200 datasheet: 8x ConnectX-7 "
                                 f"400 Gb/s = {_NDR}"),
            source=f"NVIDIA H200 Tensor Core GPU datasheet (SXM: BF16 1,979 TFLOPS with sparsity = 989 dense, "
                   f"141GB HBM3e, 4.8 TB/s); {_TORCHTITAN}; nvidia-smi reports 143,771 MiB",
            aliases=("h200-sxm", "h200-141gb"),
        ),
        GPU(
            name="A100-40GB", peak_bf16_flops=312e12, memory_gib=40.0, memory_gb_marketed=40,
            memory_bandwidth=1.555e12, nvlink_domain=8, default_mfu=0.45,
            nvlink_bandwidth=300e9, network_bandwidth=200 * _GBIT,
            interconnect_source=("NVIDIA A100 datasheet: NVLink 600 GB/s = 300 GB/s each way; DGX A100 datasheet: 8x single-port "
                                 "ConnectX-6 200 Gb/s HDR = one per GPU"),
            source=f"NVIDIA A100 Tensor Core GPU datasheet (SXM4 40GB: BF16 312 TFLOPS dense, 40GB HBM2, "
                   f"1,555 GB/s, NVLink 600 GB/s); {_TORCHTITAN}",
            aliases=("a100-40", "a100-sxm4-40gb", "a100 40gb"),
        ),
        GPU(
            name="A100-80GB", peak_bf16_flops=312e12, memory_gib=80.0, memory_gb_marketed=80,
            memory_bandwidth=2.039e12, nvlink_domain=8, default_mfu=0.45,
            nvlink_bandwidth=300e9, network_bandwidth=200 * _GBIT,
            interconnect_source=("NVIDIA A100 datasheet: NVLink 600 GB/s = 300 GB/s each way; DGX A100 datasheet: 8x single-port "
                                 "ConnectX-6 200 Gb/s HDR = one per GPU"),
            source=f"NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB: BF16 312 TFLOPS dense, 80GB HBM2e, "
                   f"2,039 GB/s); {_TORCHTITAN}; nvidia-smi reports 81,920 MiB",
            aliases=("a100", "a100-80", "a100-sxm4-80gb", "a100 80gb"),
        ),
        GPU(
            name="B200", peak_bf16_flops=2.25e15, memory_gib=_gib_from_gb(180), memory_gb_marketed=180,
            memory_bandwidth=7.7e12, nvlink_domain=8, default_mfu=0.30,
            nvlink_bandwidth=900e9, network_bandwidth=400 * _GBIT,
            interconnect_source=(f"NVIDIA HGX B200 datasheet: NVLink 1.8 TB/s = 900 GB/s each way; DGX B200 datasheet: 8x "
                                 f"ConnectX-7 400 Gb/s = {_NDR}"),
            source=f"NVIDIA HGX B200 datasheet (per GPU: BF16 4.5 PFLOPS with sparsity = 2.25 dense, 180GB HBM3e, "
                   f"7.7 TB/s, NVLink 1.8 TB/s, 8 GPUs); {_TORCHTITAN}; memory is the marketed GB (conservative)",
            aliases=("b200-sxm", "hgx-b200"),
        ),
        GPU(
            name="GB200", peak_bf16_flops=2.5e15, memory_gib=_gib_from_gb(186), memory_gb_marketed=186,
            memory_bandwidth=8.0e12, nvlink_domain=72, default_mfu=0.30,
            nvlink_bandwidth=900e9, network_bandwidth=400 * _GBIT,
            interconnect_source=(f"NVIDIA GB200 NVL72 datasheet: NVLink 1.8 TB/s per GPU = 900 GB/s each way; DGX GB200 datasheet: "
                                 f"72 single-port ConnectX-7 400 Gb/s per rack = {_NDR}"),
            source=f"NVIDIA GB200 NVL72 datasheet (72 Blackwell GPUs, 13.4 TB HBM3e = 186 GB per GPU, 8 TB/s, "
                   f"one 72-GPU NVLink domain; BF16 dense 2.5 PFLOPS per GPU); {_TORCHTITAN}; "
                   f"memory is the marketed GB (conservative)",
            aliases=("gb200-nvl72", "gb200 nvl72"),
        ),
        GPU(
            name="L40S", peak_bf16_flops=362.05e12, memory_gib=_gib_from_gb(48), memory_gb_marketed=48,
            memory_bandwidth=864e9, nvlink_domain=1, default_mfu=0.35,
            nvlink_bandwidth=32e9, network_bandwidth=200 * _GBIT,
            interconnect_source=("NVIDIA L40S datasheet: no NVLink, PCIe Gen4 x16 = 64 GB/s (32 GB/s each way, used as the intra-"
                                 "node rate); no reference system for the network: we assume one 200 Gb/s port per GPU, an "
                                 "assumption"),
            source="NVIDIA L40S datasheet (BF16 362.05 TFLOPS dense, 733 with sparsity, 48GB GDDR6 with ECC, "
                   "864 GB/s, PCIe Gen4, no NVLink); torchtitan 0.3.0 does not list it; memory is the marketed GB",
            aliases=("l40s-48gb",),
        ),
        GPU(
            name="MI300X", peak_bf16_flops=1307.4e12, memory_gib=192.0, memory_gb_marketed=192,
            memory_bandwidth=5.3e12, nvlink_domain=8, default_mfu=0.30,
            nvlink_bandwidth=448e9, network_bandwidth=400 * _GBIT,
            interconnect_source=("AMD Instinct MI300X data sheet: 7 Infinity Fabric links x 128 GB/s (both directions) = 896 GB/s "
                                 "peer bandwidth = 448 GB/s each way; AMD publishes no scale-out NIC per GPU: we assume one 400 "
                                 "Gb/s port per GPU as on DGX H100, an assumption"),
            source="AMD Instinct MI300X data sheet (BF16 1,307.4 TFLOPS dense, 192 GB HBM3 = 8 stacks x 24 GiB, "
                   "5.3 TB/s; 8 GPUs per platform on Infinity Fabric); torchtitan 0.3.0 does not list it",
            aliases=("mi300", "amd-mi300x"),
        ),
    ]
}


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_LOOKUP: dict[str, str] = {}
for _g in GPUS.values():
    for _n in (_g.name, *_g.aliases):
        _LOOKUP[_key(_n)] = _g.name


def list_gpus() -> list[GPU]:
    """All known GPUs, in table order."""
    return list(GPUS.values())


def get_gpu(name: str | GPU) -> GPU:
    """Look a GPU up by name or alias: case, spaces, dashes and underscores are ignored.

    ``"h100"`` is the H100 SXM (the 8-GPU HGX part most training clusters use); ``"a100"`` is the
    80GB SXM4 part. Unknown names raise :class:`UserError` listing the known ones.
    """
    if isinstance(name, GPU):
        return name
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"GPU name must be a non-empty string, got {name!r}; known GPUs: {', '.join(GPUS)}")
    hit = _LOOKUP.get(_key(name))
    if hit is None:
        raise UserError(f"unknown GPU {name!r}; known GPUs: {', '.join(GPUS)} (aliases such as h100, a100 work)")
    return GPUS[hit]


__all__ = ["GPU", "GPUS", "get_gpu", "list_gpus", "DEFAULT_PRICE_PER_GPU_HOUR", "GIB", "GB"]

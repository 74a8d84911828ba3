"""The serving constraint: the largest model whose weights and KV cache fit one inference GPU.

Issue 13 item 8, after the LLM360 Amber/K2 reports' advice to pick a model size that serves well
on the target inference hardware (their example: a 7B model on a single A100). ``--serve-on
GPU[,dtype][,kv=dtype]`` caps the plan's N; :func:`serving_cost` says what the cap costs in loss.

Memory of one GPU serving ``batch`` sequences of ``context`` tokens, in bytes:

* Weights. The transformer blocks at the weight dtype; the input embedding and (untied) output head
  at 16 bits whenever the weight dtype is narrower. Common weight-only quantisers leave those two
  alone: an embedding is a lookup, not a linear layer, and GPTQ (``lm_head`` option off by default),
  AWQ, bitsandbytes via Hugging Face transformers (which keeps the output layer in its original
  precision) and vLLM's fp8 linear method quantise only the blocks' linear layers. Quantisation
  metadata (one 16-bit scale per group of 128 int4 weights, +3 %; more with zero-points) is not counted: it falls
  within the runtime reserve below.
* KV cache. Every layer stores a key and a value vector per token per kv head:

      kv_cache = 2 x n_layers x n_kv_heads x head_dim x context x batch x kv_bytes

  Kwon et al. 2023, "Efficient Memory Management for Large Language Model Serving with
  PagedAttention" (SOSP '23, arXiv:2309.06180), Sec. 3: 2 (key and value) x hidden size x layers x
  bytes per element, per token; with grouped-query attention (Ainslie et al. 2023, arXiv:2305.13245)
  the hidden size of K and V is n_kv_heads x head_dim. The cache is assumed full (every sequence at
  ``context`` tokens), the worst case a server must admit.
* Runtime reserve: (1 - ``utilization``) of the GPU's memory, ``DEFAULT_GPU_MEMORY_UTILIZATION`` =
  0.9, vLLM's default ``gpu_memory_utilization`` (engine arguments: the fraction of GPU memory the
  model executor may use). The remaining 10 % stands for the CUDA context, cuBLAS/attention
  workspaces, prefill activations and allocator fragmentation. vLLM itself fits prefill activations
  inside its 0.9, so at very long prefills this estimate is a little optimistic.

The capacity is the GPU's addressable memory (:attr:`planner.hardware.GPU.memory_bytes`, what
``nvidia-smi`` reports); a model ``fits`` when weights + KV cache + reserve <= capacity.

Defaults: ``context`` = ``DEFAULT_CONTEXT`` = 4096 tokens, Llama 2's context length (Touvron et al.
2023, "Llama 2", Table 1); ``batch`` = 1 sequence, the plain reading of "serves on one GPU".
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

from planner.errors import UserError, positive_number
from planner.hardware import GIB, GPU, get_gpu
from planner.scaling_law import ScalingLaw
from planner.shape import ModelShape
from planner.shape_search import search_shapes

#: Bytes per element of each storage format, from its bit width: IEEE 754 binary32 (32 bits) and
#: binary16 (16), bfloat16 (16: 8-bit exponent, 7-bit mantissa), FP8 E4M3/E5M2 (8; Micikevicius et
#: al. 2022, "FP8 Formats for Deep Learning", arXiv:2209.05433), int8 (8) and int4 (4 bits).
DTYPE_BYTES: dict[str, float] = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
DTYPE_ALIASES: dict[str, str] = {
    "float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float8": "fp8",
    "fp8_e4m3": "fp8", "fp8_e5m2": "fp8", "e4m3": "fp8", "e5m2": "fp8", "w8": "int8", "w4": "int4",
}
#: The weight dtype when ``--serve-on`` names none: the planner trains in bf16 and exports bf16
#: checkpoints (``ModelShape.to_hf_config`` writes ``torch_dtype: bfloat16``).
DEFAULT_WEIGHT_DTYPE = "bf16"
#: The KV cache dtype when none is given: 16 bits, vLLM's ``kv_cache_dtype="auto"`` (the model's
#: activation dtype, bf16/fp16 also for int4/int8 weight-only checkpoints).
DEFAULT_KV_DTYPE = "bf16"
#: Embedding and output-head bytes per parameter when the blocks are quantised below 16 bits (see
#: the module docstring: quantisers leave them in 16-bit).
UNQUANTISED_EMBEDDING_BYTES = 2.0
#: vLLM's default ``gpu_memory_utilization`` (see the module docstring).
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
#: Llama 2's context length (Touvron et al. 2023, Table 1).
DEFAULT_CONTEXT = 4096
#: One sequence at a time.
DEFAULT_BATCH = 1
#: Training FLOPs per token per parameter, C = 6 N D (Kaplan et al. 2020, Sec. 2.1).
TRAIN_FLOPS_PER_TOKEN_PER_PARAM = 6.0
#: The bisection in :func:`max_serving_params` stops when its bracket is narrower than this.
DEFAULT_REL_TOL = 1e-3
#: Smallest parameter count :func:`max_serving_params` tries before saying nothing fits.
MIN_SEARCH_PARAMS = 1e6

_SYNTAX = "GPU[,weight dtype][,kv=dtype], e.g. A100, H100,bf16, A100-80GB,int8 or H100,fp8,kv=fp8"


def _dtype(name: str, what: str, text: str) -> str:
    key = name.strip().lower()
    key = DTYPE_ALIASES.get(key, key)
    if key not in DTYPE_BYTES:
        raise UserError(f"--serve-on {text!r}: unknown {what} {name.strip()!r}; use one of "
                        f"{', '.join(DTYPE_BYTES)} (syntax: {_SYNTAX})")
    return key


@dataclass(frozen=True)
class ServingTarget:
    """The inference GPU and the storage formats of the weights and the KV cache."""

    gpu: GPU
    weight_dtype: str = DEFAULT_WEIGHT_DTYPE
    kv_dtype: str = DEFAULT_KV_DTYPE

    def __post_init__(self) -> None:
        object.__setattr__(self, "gpu", get_gpu(self.gpu))
        object.__setattr__(self, "weight_dtype", _dtype(str(self.weight_dtype), "weight dtype", self.label))
        object.__setattr__(self, "kv_dtype", _dtype(str(self.kv_dtype), "KV cache dtype", self.label))

    @property
    def weight_bytes(self) -> float:
        """Bytes per parameter of the transformer blocks."""
        return DTYPE_BYTES[self.weight_dtype]

    @property
    def embedding_bytes(self) -> float:
        """Bytes per embedding/output-head parameter (16-bit when the blocks are quantised)."""
        return max(self.weight_bytes, UNQUANTISED_EMBEDDING_BYTES)

    @property
    def kv_bytes(self) -> float:
        """Bytes per KV cache element."""
        return DTYPE_BYTES[self.kv_dtype]

    @property
    def label(self) -> str:
        """The canonical ``--serve-on`` text, e.g. ``A100-80GB,bf16,kv=bf16``."""
        name = self.gpu.name if isinstance(self.gpu, GPU) else str(self.gpu)
        return f"{name},{self.weight_dtype},kv={self.kv_dtype}"

    def to_dict(self) -> dict[str, Any]:
        return {"gpu": self.gpu.name, "weight_dtype": self.weight_dtype, "kv_dtype": self.kv_dtype,
                "weight_bytes": self.weight_bytes, "embedding_bytes": self.embedding_bytes,
                "kv_bytes": self.kv_bytes, "memory_bytes": self.gpu.memory_bytes, "label": self.label}


def parse_serve_on(text: str | ServingTarget) -> ServingTarget:
    """``"A100"``, ``"H100,bf16"``, ``"A100-80GB,int8"``, ``"H100,fp8,kv=fp8"`` -> ServingTarget.

    The first comma-separated field is the GPU (any name or alias :func:`planner.hardware.get_gpu`
    knows); then at most one weight dtype and at most one ``kv=dtype``, in any order. Weights
    default to bf16, the KV cache to bf16 (see ``DEFAULT_WEIGHT_DTYPE``, ``DEFAULT_KV_DTYPE``).
    """
    if isinstance(text, ServingTarget):
        return text
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"--serve-on needs a GPU, got {text!r}; write {_SYNTAX}")
    gpu_name, *rest = [part.strip() for part in text.split(",")]
    try:
        gpu = get_gpu(gpu_name)
    except UserError as err:
        raise UserError(f"--serve-on {text!r}: {err}") from None
    fields: dict[str, str] = {}
    for part in rest:
        key, sep, value = part.partition("=")
        key = key.strip().lower() if sep else "weights"
        value = value if sep else part
        if key in ("w", "weight"):
            key = "weights"
        if key not in ("weights", "kv") or not value.strip():
            raise UserError(f"--serve-on {text!r}: cannot read {part!r}; write {_SYNTAX}")
        if key in fields:
            raise UserError(f"--serve-on {text!r}: the {'KV cache' if key == 'kv' else 'weight'} dtype is given "
                            f"twice ({fields[key]!r} and {value.strip()!r}); keep one")
        fields[key] = value
    return ServingTarget(gpu=gpu, weight_dtype=_dtype(fields.get("weights", DEFAULT_WEIGHT_DTYPE), "weight dtype", text),
                         kv_dtype=_dtype(fields.get("kv", DEFAULT_KV_DTYPE), "KV cache dtype", text))


@dataclass(frozen=True)
class ServingMemory:
    """Bytes needed to serve one shape on one GPU (see the module docstring for each part)."""

    weights_bytes: float
    kv_cache_bytes: float
    overhead_bytes: float  # the runtime reserve, (1 - utilization) x capacity
    total_bytes: float
    capacity_bytes: float
    fits: bool
    context: int
    batch: int
    gpu: str

    @property
    def headroom_bytes(self) -> float:
        """Capacity minus total (negative: does not fit)."""
        return self.capacity_bytes - self.total_bytes

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "headroom_bytes": self.headroom_bytes,
                "total_gib": self.total_bytes / GIB, "capacity_gib": self.capacity_bytes / GIB}


def _positive_int(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x <= 0:
        raise UserError(f"{what} must be a positive integer, got {x!r}")
    return x


def _utilization(u: Any) -> float:
    v = positive_number(u, "GPU memory utilization")
    if v > 1:
        raise UserError(f"GPU memory utilization is a fraction in (0, 1], got {u!r}; vLLM's default is "
                        f"{DEFAULT_GPU_MEMORY_UTILIZATION}")
    return v


def kv_cache_bytes(shape: ModelShape, kv_bytes: float, *, context: int, batch: int) -> float:
    """2 x layers x kv_heads x head_dim x context x batch x kv_bytes (Kwon et al. 2023, Sec. 3)."""
    return 2.0 * shape.n_layers * shape.n_kv_heads * shape.head_dim * context * batch * kv_bytes


def weights_bytes(shape: ModelShape, target: ServingTarget) -> float:
    """Blocks at the weight dtype, embedding and output head at ``target.embedding_bytes``."""
    return shape.non_embedding_params * target.weight_bytes + shape.embedding_params * target.embedding_bytes


def serving_memory(shape: ModelShape, target: ServingTarget | str, *, context: int = DEFAULT_CONTEXT,
                   batch: int = DEFAULT_BATCH, utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
                   ) -> ServingMemory:
    """Weights + full KV cache + runtime reserve of ``shape`` on ``target``, and whether it fits."""
    target = parse_serve_on(target)
    context = _positive_int(context, "serving context (tokens)")
    batch = _positive_int(batch, "serving batch (sequences)")
    capacity = float(target.gpu.memory_bytes)
    weights = weights_bytes(shape, target)
    kv = kv_cache_bytes(shape, target.kv_bytes, context=context, batch=batch)
    overhead = (1.0 - _utilization(utilization)) * capacity
    total = weights + kv + overhead
    return ServingMemory(weights_bytes=weights, kv_cache_bytes=kv, overhead_bytes=overhead, total_bytes=total,
                         capacity_bytes=capacity, fits=total <= capacity, context=context, batch=batch,
                         gpu=target.gpu.name)


@dataclass(frozen=True)
class ServingLimit:
    """The largest model that serves on ``target``: ``n_max`` = ``shape.total_params``."""

    n_max: int
    shape: ModelShape
    memory: ServingMemory
    target: ServingTarget

    def to_dict(self) -> dict[str, Any]:
        return {"n_max": self.n_max, "shape": self.shape.to_dict(), "memory": self.memory.to_dict(),
                "target": self.target.to_dict()}


def default_shape_for(vocab_size: int, seq_len: int) -> Callable[[float], ModelShape]:
    """N -> the best-ranked :func:`planner.shape_search.search_shapes` shape of about N total params."""
    def shape_for(n: float) -> ModelShape:
        return search_shapes(n, vocab_size=vocab_size, pad_vocab_to=128, tp=1, seq_len=seq_len, top=1)[0].shape
    return shape_for


def max_serving_params(target: ServingTarget | str, *, context: int = DEFAULT_CONTEXT, batch: int = DEFAULT_BATCH,
                       vocab_size: int = 32000, shape_for: Callable[[float], ModelShape] | None = None,
                       utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION, rel_tol: float = DEFAULT_REL_TOL
                       ) -> ServingLimit:
    """The largest total parameter count whose shape fits ``target`` at ``context`` x ``batch``.

    Shape matters: the KV cache grows with layers x kv_heads x head_dim, not with N alone, so each
    trial N is turned into a shape by ``shape_for`` (default: the top :func:`search_shapes` result
    at ``vocab_size``, 32000 = the Llama 2 tokenizer and search_shapes' default) and measured with
    :func:`serving_memory`. Bisection on log N between a size that fits and one that cannot (the
    weights alone would exceed the usable memory) until the bracket is within ``rel_tol``; returns
    the largest fitting shape seen. UserError when not even a ``MIN_SEARCH_PARAMS`` model fits.
    """
    target = parse_serve_on(target)
    context = _positive_int(context, "serving context (tokens)")
    batch = _positive_int(batch, "serving batch (sequences)")
    tol = positive_number(rel_tol, "bisection tolerance")
    shape_for = shape_for or default_shape_for(vocab_size, context)

    def trial(n: float) -> tuple[ModelShape, ServingMemory]:
        shape = shape_for(n)
        return shape, serving_memory(shape, target, context=context, batch=batch, utilization=utilization)

    usable = _utilization(utilization) * target.gpu.memory_bytes
    hi = 2.0 * usable / target.weight_bytes  # a searched shape of this size holds > usable bytes of weights
    best, lo = None, hi
    while best is None:
        lo /= 4.0
        try:
            shape, mem = trial(lo) if lo >= MIN_SEARCH_PARAMS else (None, None)
        except UserError:  # below the smallest shape the vocabulary allows
            shape, mem = None, None
        if shape is None:
            raise UserError(_nothing_fits(target, context, batch, lo * 4.0, trial))
        if mem.fits:
            best = (shape, mem)
    while hi / lo > 1.0 + tol:
        mid = math.sqrt(lo * hi)
        shape, mem = trial(mid)
        if mem.fits:
            lo = mid
            if shape.total_params > best[0].total_params:
                best = (shape, mem)
        else:
            hi = mid
    return ServingLimit(n_max=int(best[0].total_params), shape=best[0], memory=best[1], target=target)


def _nothing_fits(target: ServingTarget, context: int, batch: int, n: float, trial) -> str:
    """The UserError text when even the smallest tried model does not fit."""
    detail = ""
    try:
        shape, mem = trial(n)
        detail = (f": a {shape.total_params:.3g}-parameter model already needs {mem.total_bytes / GIB:.1f} GiB "
                  f"(KV cache {mem.kv_cache_bytes / GIB:.1f} GiB) of {mem.capacity_bytes / GIB:.1f} GiB")
    except UserError:
        pass
    return (f"no model fits {target.label} at context {context} x batch {batch}{detail}; shorten the context, "
            f"serve fewer sequences at once, store the KV cache in 8 bits (kv=fp8) or pick a larger GPU")


@dataclass(frozen=True)
class ServingCost:
    """The compute-optimal model at budget ``C`` with and without the cap N <= ``n_max``.

    ``n_opt``, ``d_opt``, ``loss_opt``: the unconstrained optimum; ``n``, ``d``, ``loss``: the best
    with N <= n_max (D = C / (k N)); ``penalty_nats`` = loss - loss_opt >= 0, ``penalty_pct`` =
    100 x penalty_nats / loss_opt; ``binding``: whether the cap moved N.
    """

    C: float
    n_max: float
    n_opt: float
    d_opt: float
    loss_opt: float
    n: float
    d: float
    loss: float
    penalty_nats: float
    penalty_pct: float
    binding: bool
    law: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def serving_cost(law: ScalingLaw, flops: float, n_max: float,
                 flops_per_token_per_param: float = TRAIN_FLOPS_PER_TOKEN_PER_PARAM) -> ServingCost:
    """The best (N, D = C / (k N)) with N <= ``n_max`` and its loss penalty vs the optimum.

    The constrained optimum is N = min(N*, n_max). Along the budget, L(N) = E + A N^-alpha +
    B (k N / C)^beta, and dL/dlnN = -alpha A N^-alpha + beta B (k N / C)^beta: both terms strictly
    increase with N (alpha, beta > 0), so the derivative crosses zero once, at N*. L therefore falls
    strictly up to N* and rises after it (unimodal), and the best N allowed by the cap is the one
    closest to N*: N* itself when it fits, else n_max.
    """
    C = positive_number(flops, "compute budget C (FLOPs)")
    cap = positive_number(n_max, "largest servable parameter count n_max")
    k = positive_number(flops_per_token_per_param, "FLOPs per token per parameter")
    opt = law.optimal(C, k, interval=None)
    binding = cap < opt.N
    n, d = (cap, C / (k * cap)) if binding else (opt.N, opt.D)
    loss = float(law.predict(n, d)) if binding else opt.loss
    penalty = loss - opt.loss
    return ServingCost(C=C, n_max=cap, n_opt=opt.N, d_opt=opt.D, loss_opt=opt.loss, n=n, d=d, loss=loss,
                       penalty_nats=penalty, penalty_pct=100.0 * penalty / opt.loss, binding=binding,
                       law=law.name)


__all__ = ["DTYPE_BYTES", "DEFAULT_CONTEXT", "DEFAULT_BATCH", "DEFAULT_GPU_MEMORY_UTILIZATION", "ServingTarget",
           "ServingMemory", "ServingLimit", "ServingCost", "parse_serve_on", "serving_memory", "kv_cache_bytes",
           "weights_bytes", "max_serving_params", "default_shape_for", "serving_cost"]

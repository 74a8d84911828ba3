"""The shape rules published Llama-style families follow, and the table of published shapes they come from.

A rule's size thresholds are on the shape's own *non-embedding* parameter count N (Kaplan et al. 2020's
N), so that a large vocabulary does not move a model across one: Llama-3.2-1B has 1.24B parameters in
all but 0.97B outside its (tied) 128,256-row embedding. Every shape below is a config.json (or a
paper table) row of :data:`PUBLISHED`; "L" is layers, "d" d_model, "a" attention heads.

Hard rules (``planner.shape_search`` never returns a shape that breaks one, unless ``family=False``):

* ``d_model_multiple``: d a multiple of 128, and of 256 from N = 1e9. The table rows from 1B up
  have d in {1536, 2048, 2560, 3072, 3584, 4096, 5120, 6656, 8192, 12288, 16384} (multiples of 256)
  but for GPT-3 13B's 5140 (Brown et al. 2020, Table 2.1; its 40 heads of 128 make 5120, an
  oddity); below 1B Qwen2.5-0.5B has 896 = 7 x 128.
* ``head_dim_family``: head dim 128; 64 is allowed below N = 1e9. 128 is the head dim of every
  Llama-2, Llama-3 (but 3.2-1B), Mistral, Qwen2.5 (from 1.5B), Qwen3, OLMo, llm-jp-3 and GPT-3 XL,
  6.7B, 13B and 175B row; the rows with 64 are small: GPT-3 Small/Medium (85M / 302M
  non-embedding), Qwen2.5-0.5B (0.36B), TinyLlama-1.1B and Llama-3.2-1B (0.97B each). GPT-3 760M
  (96) and 2.7B (80) break the rule. (Outside the table, HF HuggingFaceTB/SmolLM2-1.7B uses 64 at
  1.6B.) A caller's explicit ``head_dim`` replaces this rule. The search uses 128 from d = 1024 (8
  heads) up, and 64 for narrower models (Pythia-70M: 8 heads of 64 at d 512, Biderman et al. 2023,
  Table 1) or where 128 would not give heads in 8Z or a power of two (d 768: 12 heads of 64, as
  GPT-3 Small; d 1536: 24 of 64, not 12 of 128).
* ``heads_regular``: heads a multiple of 8 or a power of two (of 4 is enough below N = 1e9).
  Megatron-LM requires heads % TP == 0 (``TransformerConfig.__post_init__``, notes §1c rule 4), and
  TP stays within one 8-GPU NVLink node (Narayanan et al. 2021, arXiv 2104.04473, §3, Takeaway
  #1), so a family sized for TP 8 has heads in 8Z. Rows from 1B: 16, 24, 32, 40, 64, 96, 128 heads;
  the breakers are Qwen2.5 (1.5B: 12, 7B: 28) and LLaMA-33B (52). Small models train at TP <= 4
  and publish 12 heads (GPT-3 Small; Pythia-160M, Biderman et al. 2023) or 16; Qwen2.5-0.5B's 14
  breaks the rule.
* ``layers_pipeline``: L even, a multiple of 4 from N = 1e9 and of 8 from N = 3e10. Every row of
  the table has an even depth (the shallowest: GPT-3 Small 12, Llama-3.2-1B 16, TinyLlama 22).
  Megatron splits the layers evenly over pipeline stages, ``num_layers % PP == 0``, and the
  interleaved schedule also needs ``(L / PP) % layers_per_virtual_stage == 0`` (notes §1c rule 5):
  PP 4 (or PP 2 with 2 virtual stages) needs L in 4Z, PP 8 (or PP 4 with 2 virtual stages) L in
  8Z. From ~30B the 16 bytes per parameter of mixed-precision Adam state (Rajbhandari et al. 2020,
  ZeRO §3.1: 2 + 2 + 12) pass 480 GB, most of an 8 x 80 GB node, so such runs are pipelined.
  Rows from 1B: 16, 24, 28, 32, 36, 40, 48, 64, 80, 96 layers; from 30B all in 8Z except LLaMA-33B
  (60) and Llama-3.1-405B (126: the Llama 3 paper, Dubey et al. 2024, §3.3.2 "pipeline parallelism
  improvements", removes one layer from the first and one from the last of its 16 stages, which
  hold the embedding and the output layer).
* ``aspect_in_range``: d / L inside :data:`ASPECT_BAND`, the span of the table (min to max, rounded
  outward): Qwen2.5-0.5B 896 / 24 = 37.3 up to Llama-3.1-405B 16384 / 126 = 130.0. Kaplan et al.
  2020 (Fig. 5) found the loss within a few percent over a much wider range of d/L, so this band is
  about looking like a real model, not about loss. A caller's ``aspect`` replaces it.
* ``ffn_multiple_256``: d_ffn a multiple of 256 (of less for narrow models: ``ffn_multiple_for``),
  Llama's ``multiple_of=256`` (Touvron et al. 2023, model.py); every Llama, Mistral, OLMo, Qwen3 and
  llm-jp row obeys it (Qwen2.5-72B's 29568 = 115.5 x 256 does not).
* ``ffn_ratio_in_band``: d_ffn / d in [2.5, 4.0], the SwiGLU span of Llama-2 (11008 / 4096 = 2.69),
  Llama-3 and Mistral (3.5), Llama-3.2-1B (4.0), Llama-3.2-3B (2.67), Qwen3-8B (3.0), OLMo (2.69),
  TinyLlama (2.75). Qwen2.5 uses 5.3-5.8 (except 14B: 2.7; 72B: 3.6); it is outside the band.
* ``kv_heads_policy``: 8 kv heads from d = 4096, unless told otherwise (``kv_heads=`` or
  ``gqa_ratio=``). With d >= 4096, Llama-2-70B (Llama 2 paper, Table 1: GQA for 34B and 70B),
  Llama-3 8B/70B/405B, Mistral-7B, Qwen2.5 14B-72B and Qwen3 8B/14B use 8 kv heads; Llama-2
  7B/13B, LLaMA, OLMo 7B, OLMo-2 7B/13B, llm-jp-3-13b and GPT-3 are MHA (``gqa_ratio=1`` gets
  them). The default follows the newer Llama, Mistral and Qwen lines: GQA comes close to MHA's quality with
  a KV cache heads/8 times smaller (Ainslie et al. 2023, arXiv 2305.13245). Below d = 4096 both are
  published (MHA: OLMo-1B, llm-jp-3 1.8b/3.7b; 8 kv heads: Llama-3.2 1B/3B), so either is accepted
  and the search builds MHA there.

Soft preference (:data:`FAMILY_PENALTY`, points of score, 1 point = 1 % of parameter error):

* ``layers_mult_8`` from N = 1e9 (below 3e10, where it is hard; 1 point): leaves PP 8 and
  interleaving open; most rows from 1B have L in 8Z (16, 24, 32, 40, 48), the others 28 or 36.

The ranking's aspect preference is :data:`ASPECT_CENTER`, the median d / L of the table (110).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.shape import PRESETS, ModelShape, preset_shape

HEAD_DIM = 128
SMALL_HEAD_DIM = 64
SMALL_MAX_N = 1e9  # head dim 64 allowed below this non-embedding count
D_MODEL_MULT, D_MODEL_MULT_LARGE, LARGE_FROM_N = 128, 256, 1e9
PP4_FROM_N, PP8_FROM_N = 1e9, 3e10
GQA_FROM_D_MODEL, GQA_KV_HEADS = 4096, 8
FFN_MULTIPLE = 256
FFN_RATIO = (2.5, 4.0)
FAMILY_RULES = ("d_model_multiple", "head_dim_family", "heads_regular", "layers_pipeline",
                "ffn_multiple_256", "ffn_ratio_in_band", "kv_heads_policy")
FAMILY_PENALTY: dict[str, float] = {"layers_mult_8": 1.0}

_LLAMA3 = dict(vocab_size=128256, rope_theta=500000.0)
_QWEN = dict(vocab_size=152064, rope_theta=1e6)
_QWEN_TIED = dict(vocab_size=151936, tied=True, rope_theta=1e6)
_GPT3 = dict(vocab_size=50257, tied=True, activation="gelu", norm="layernorm", head_dim=None)

# Shapes not in planner.shape.PRESETS: ModelShape fields, and where they were published.
# Qwen2.5 has q/k/v biases and OLMo a non-parametric LayerNorm (QK-norm in OLMo 2): ModelShape counts
# neither difference, which moves no count by more than 0.01 %.
_EXTRA: dict[str, tuple[dict[str, Any], str]] = {
    "llama-3-70b": (dict(n_layers=80, d_model=8192, d_ffn=28672, n_heads=64, n_kv_heads=8, **_LLAMA3),
                    "HF meta-llama/Meta-Llama-3-70B config.json"),
    "llama-3.1-405b": (dict(n_layers=126, d_model=16384, d_ffn=53248, n_heads=128, n_kv_heads=8, **_LLAMA3),
                       "HF meta-llama/Llama-3.1-405B config.json"),
    "llama-33b": (dict(n_layers=60, d_model=6656, d_ffn=17920, n_heads=52, vocab_size=32000),
                  "Touvron et al. 2023a (LLaMA), Table 2; d_ffn = ceil(8/3 d / 256) * 256"),
    "qwen2.5-0.5b": (dict(n_layers=24, d_model=896, d_ffn=4864, n_heads=14, n_kv_heads=2, **_QWEN_TIED),
                     "HF Qwen/Qwen2.5-0.5B config.json"),
    "qwen2.5-1.5b": (dict(n_layers=28, d_model=1536, d_ffn=8960, n_heads=12, n_kv_heads=2, **_QWEN_TIED),
                     "HF Qwen/Qwen2.5-1.5B config.json"),
    "qwen2.5-3b": (dict(n_layers=36, d_model=2048, d_ffn=11008, n_heads=16, n_kv_heads=2, **_QWEN_TIED),
                   "HF Qwen/Qwen2.5-3B config.json"),
    "qwen2.5-7b": (dict(n_layers=28, d_model=3584, d_ffn=18944, n_heads=28, n_kv_heads=4, **_QWEN),
                   "HF Qwen/Qwen2.5-7B config.json"),
    "qwen2.5-14b": (dict(n_layers=48, d_model=5120, d_ffn=13824, n_heads=40, n_kv_heads=8, **_QWEN),
                    "HF Qwen/Qwen2.5-14B config.json"),
    "qwen2.5-32b": (dict(n_layers=64, d_model=5120, d_ffn=27648, n_heads=40, n_kv_heads=8, **_QWEN),
                    "HF Qwen/Qwen2.5-32B config.json"),
    "qwen2.5-72b": (dict(n_layers=80, d_model=8192, d_ffn=29568, n_heads=64, n_kv_heads=8, **_QWEN),
                    "HF Qwen/Qwen2.5-72B config.json"),
    "qwen3-8b": (dict(n_layers=36, d_model=4096, d_ffn=12288, n_heads=32, n_kv_heads=8, vocab_size=151936),
                 "HF Qwen/Qwen3-8B config.json (head_dim 128)"),
    "qwen3-14b": (dict(n_layers=40, d_model=5120, d_ffn=17408, n_heads=40, n_kv_heads=8, vocab_size=151936),
                  "HF Qwen/Qwen3-14B config.json (head_dim 128)"),
    "olmo-1b": (dict(n_layers=16, d_model=2048, d_ffn=8192, n_heads=16, vocab_size=50304, tied=True),
                "allenai/OLMo configs/official/OLMo-1B.yaml (mlp_hidden_size 16384 = 2 x 8192, weight tying)"),
    "olmo-7b": (dict(n_layers=32, d_model=4096, d_ffn=11008, n_heads=32, vocab_size=50304),
                "allenai/OLMo configs/official/OLMo-7B.yaml (mlp_hidden_size 22016, embedding_size 50304)"),
    "olmo-2-7b": (dict(n_layers=32, d_model=4096, d_ffn=11008, n_heads=32, vocab_size=100352),
                  "HF allenai/OLMo-2-1124-7B config.json"),
    "olmo-2-13b": (dict(n_layers=40, d_model=5120, d_ffn=13824, n_heads=40, vocab_size=100352),
                   "HF allenai/OLMo-2-1124-13B config.json"),
    # Brown et al. 2020, Table 2.1 (n_layers, d_model, n_heads, d_head); d_ff = 4 d_model (§2.1).
    **{f"gpt-3-{size}": (dict(n_layers=L, d_model=d, d_ffn=4 * d, n_heads=a, **{**_GPT3, "head_dim": hd}),
                         "Brown et al. 2020 (GPT-3), Table 2.1")
       for size, L, d, a, hd in (("125m", 12, 768, 12, 64), ("350m", 24, 1024, 16, 64), ("760m", 24, 1536, 16, 96),
                                 ("1.3b", 24, 2048, 24, 128), ("2.7b", 32, 2560, 32, 80),
                                 ("6.7b", 32, 4096, 32, 128), ("13b", 40, 5140, 40, 128),
                                 ("175b", 96, 12288, 96, 128))},
}
_PRESET_ROWS = ("llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-65b", "llama-3-8b", "llama-3.2-1b",
                "llama-3.2-3b", "mistral-7b", "tinyllama-1.1b", "llm-jp-3-1.8b", "llm-jp-3-3.7b", "llm-jp-3-13b")
#: Every published shape of the table: name -> source (planner.shape.PRESETS names its sources).
PUBLISHED: dict[str, str] = {**{n: "planner.shape.PRESETS" for n in _PRESET_ROWS},
                             **{n: src for n, (_, src) in _EXTRA.items()}}


def published_shape(name: str, **overrides: Any) -> ModelShape:
    """A row of the table as a ModelShape (presets from planner.shape.PRESETS)."""
    if name in _EXTRA:
        return ModelShape(**{**_EXTRA[name][0], **overrides, "name": name})
    if name in PRESETS:
        return preset_shape(name, **overrides)
    raise KeyError(name)


_ASPECTS = [published_shape(n).d_model / published_shape(n).n_layers for n in PUBLISHED]
#: d_model / n_layers spanned by the table, rounded outward: (37, 131).
ASPECT_BAND: tuple[float, float] = (float(math.floor(min(_ASPECTS))), float(math.ceil(max(_ASPECTS))))
#: The table's median d_model / n_layers, the ranking's preferred aspect.
ASPECT_CENTER: float = float(statistics.median(_ASPECTS))


@dataclass(frozen=True)
class Policy:
    """What the caller asked for; None means "as the family rules say"."""

    tp: int = 1
    head_dims: tuple[int, ...] | None = None
    kv_heads: int | None = None
    gqa_ratio: int | None = None
    aspect: tuple[float, float] = ASPECT_BAND
    ffn_ratio: tuple[float, float] = FFN_RATIO
    ffn_multiple: int = FFN_MULTIPLE
    family: bool = True

    @property
    def aspect_center(self) -> float:
        lo, hi = self.aspect
        return ASPECT_CENTER if lo <= ASPECT_CENTER <= hi else math.sqrt(lo * hi)


def is_pow2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    return (x > 0) & ((x & (x - 1)) == 0)


def heads_regular(heads: np.ndarray, n: np.ndarray | None = None) -> np.ndarray:
    """Heads in 8Z or a power of two; with the non-embedding count ``n``, 4Z is enough below 1B."""
    heads = np.asarray(heads, dtype=np.int64)
    ok = (heads % 8 == 0) | is_pow2(heads)
    return ok if n is None else ok | ((heads % 4 == 0) & (np.asarray(n) < SMALL_MAX_N))


def ffn_multiple_for(d_model: np.ndarray | int, requested: int = FFN_MULTIPLE, tp: int = 1) -> np.ndarray:
    """The d_ffn granularity at width ``d_model``: ``requested``, shrunk for narrow models to
    2**floor(log2(d / 4)) (at least 8: d 512 -> 128, 128 -> 32), raised to a multiple of TP."""
    d = np.asarray(d_model, dtype=np.int64)
    cap = np.maximum(8, 2 ** np.floor(np.log2(np.maximum(d, 4) / 4)).astype(np.int64))
    return np.lcm(np.minimum(int(requested), cap), int(tp))


def kv_heads_for(heads: np.ndarray, d: np.ndarray, pol: Policy) -> tuple[np.ndarray, np.ndarray]:
    """(kv heads the search builds, whether that is possible) for each (heads, d_model)."""
    heads = np.asarray(heads, dtype=np.int64)
    if pol.kv_heads is not None:
        kv = np.minimum(pol.kv_heads, heads)
    elif pol.gqa_ratio is not None:
        kv = np.maximum(1, heads // pol.gqa_ratio)
        return kv, heads % pol.gqa_ratio == 0
    else:
        kv = np.where((np.asarray(d) >= GQA_FROM_D_MODEL) & (heads > GQA_KV_HEADS), GQA_KV_HEADS, heads)
    return kv, heads % kv == 0


def family_rules(L, d, heads, kv, hd, f, n, pol: Policy) -> dict[str, np.ndarray]:
    """Each hard family rule (module docstring) per shape; ``n`` is the non-embedding count."""
    L, d, heads, kv, hd, f = (np.asarray(x, dtype=np.int64) for x in (L, d, heads, kv, hd, f))
    n = np.asarray(n, dtype=np.float64)
    if pol.head_dims is None:
        hd_ok = (hd == HEAD_DIM) | ((hd == SMALL_HEAD_DIM) & (n < SMALL_MAX_N))
    else:
        hd_ok = np.isin(hd, np.asarray(pol.head_dims, dtype=np.int64))
    if pol.kv_heads is not None:
        kv_ok = kv == np.minimum(pol.kv_heads, heads)
    elif pol.gqa_ratio is not None:
        kv_ok = kv * pol.gqa_ratio == heads
    else:
        kv_ok = np.where(d >= GQA_FROM_D_MODEL, kv == GQA_KV_HEADS, (kv == heads) | (kv == GQA_KV_HEADS))
    ratio = f / d
    return {
        "d_model_multiple": (d % D_MODEL_MULT == 0) & ((n < LARGE_FROM_N) | (d % D_MODEL_MULT_LARGE == 0)),
        "head_dim_family": hd_ok,
        "heads_regular": heads_regular(heads, n),
        "layers_pipeline": (L % 2 == 0) & ((n < PP4_FROM_N) | (L % 4 == 0)) & ((n < PP8_FROM_N) | (L % 8 == 0)),
        "ffn_multiple_256": f % ffn_multiple_for(d, pol.ffn_multiple, pol.tp) == 0,
        "ffn_ratio_in_band": (ratio >= pol.ffn_ratio[0] - 1e-9) & (ratio <= pol.ffn_ratio[1] + 1e-9),
        "kv_heads_policy": kv_ok,
    }


def family_soft(L, n) -> dict[str, np.ndarray]:
    """The soft family preferences (:data:`FAMILY_PENALTY`), True where met (``n``: non-embedding)."""
    return {"layers_mult_8": (np.asarray(L, dtype=np.int64) % 8 == 0) | (np.asarray(n) < PP4_FROM_N)}

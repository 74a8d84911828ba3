"""Published model shapes (keyword arguments of ``planner.shape.ModelShape``), each with its source.

Counts are asserted in tests/test_shape.py; ``planner.shape.preset_shape(name)`` builds one.
"""
from __future__ import annotations

from typing import Any

# Published shapes, each with its source; counts are asserted in tests/test_shape.py.
PRESETS: dict[str, dict[str, Any]] = {
    # LLM360/crystalcoder-train pretrain/params/phase1/params.yaml model: 32 layers, hidden 4096, filter_size
    # 10922 (SwiGLU), 32 heads, vocab 32032 unpadded, LayerNorm eps 1e-5, biases in attention and FFN (none on
    # the output), shared embeddings, rotary_dim 32 of head_dim 128, max_position_embeddings 2048
    "crystal-7b": dict(n_layers=32, d_model=4096, d_ffn=10922, n_heads=32, vocab_size=32032, seq_len=2048, tied=True,
                       norm="layernorm", attn_bias=True, ffn_bias=True, rotary_fraction=0.25),
    # Touvron et al. 2023 (Llama 2), HF meta-llama/Llama-2-7b-hf config.json
    "llama-2-7b": dict(n_layers=32, d_model=4096, d_ffn=11008, n_heads=32, vocab_size=32000, seq_len=4096),
    "llama-2-13b": dict(n_layers=40, d_model=5120, d_ffn=13824, n_heads=40, vocab_size=32000, seq_len=4096),
    "llama-2-70b": dict(n_layers=80, d_model=8192, d_ffn=28672, n_heads=64, n_kv_heads=8, vocab_size=32000,
                        seq_len=4096),
    # Llama 3 (2024), HF meta-llama/Meta-Llama-3-8B config.json
    "llama-3-8b": dict(n_layers=32, d_model=4096, d_ffn=14336, n_heads=32, n_kv_heads=8, vocab_size=128256,
                       seq_len=8192, rope_theta=500000.0),
    # Llama 1 (Touvron et al. 2023a), 65B: 80 layers, 8192, 64 heads, ffn 22016
    "llama-65b": dict(n_layers=80, d_model=8192, d_ffn=22016, n_heads=64, vocab_size=32000, seq_len=2048),
    # LLM-jp-3 1.8B model card (llm-jp/llm-jp-3-1.8b): vocab 99,487 padded to 99,584 (multiple of 128)
    "llm-jp-3-1.8b": dict(n_layers=24, d_model=2048, d_ffn=7168, n_heads=16, vocab_size=99487, pad_vocab_to=128,
                          seq_len=4096),
    # LLM-jp-3 model cards (llm-jp/llm-jp-3-3.7b, -13b): same tokenizer and padding as 1.8b
    "llm-jp-3-3.7b": dict(n_layers=28, d_model=3072, d_ffn=8192, n_heads=24, vocab_size=99487, pad_vocab_to=128,
                          seq_len=4096),
    "llm-jp-3-13b": dict(n_layers=40, d_model=5120, d_ffn=13824, n_heads=40, vocab_size=99487, pad_vocab_to=128,
                         seq_len=4096),
    # TinyLlama/TinyLlama-1.1B (Zhang et al. 2024), HF config.json
    "tinyllama-1.1b": dict(n_layers=22, d_model=2048, d_ffn=5632, n_heads=32, n_kv_heads=4, vocab_size=32000,
                           seq_len=2048),
    # mistralai/Mistral-7B-v0.1 config.json (Jiang et al. 2023); sliding window does not change counts
    "mistral-7b": dict(n_layers=32, d_model=4096, d_ffn=14336, n_heads=32, n_kv_heads=8, vocab_size=32000,
                       seq_len=8192),
    # meta-llama/Llama-3.2-1B and -3B config.json: tied embeddings, head_dim 64 and 128
    "llama-3.2-1b": dict(n_layers=16, d_model=2048, d_ffn=8192, n_heads=32, n_kv_heads=8, vocab_size=128256,
                         tied=True, seq_len=8192, rope_theta=500000.0),
    "llama-3.2-3b": dict(n_layers=28, d_model=3072, d_ffn=8192, n_heads=24, n_kv_heads=8, vocab_size=128256,
                         tied=True, seq_len=8192, rope_theta=500000.0),
    # LLM360/k2-train scripts/pretrain_65b.sh: Llama-65B's blocks, --vocab-size 32032 kept unpadded (its
    # LLaMATokenizer path sets padded_vocab_size = vocab_size), --seq-length 2048, --layernorm-epsilon 1e-5
    "k2-65b": dict(n_layers=80, d_model=8192, d_ffn=22016, n_heads=64, vocab_size=32032, seq_len=2048),
    # LLM360/amber-train README "Hyperparameters" (LLaMA-7B shape, RMSNorm eps 1e-6, max seq 2048, vocab 32000)
    "amber-7b": dict(n_layers=32, d_model=4096, d_ffn=11008, n_heads=32, vocab_size=32000, seq_len=2048,
                     norm_eps=1e-6),
    # McGill-DMaS/DMaS-LLaMa-Lite-Training-Code presets.py llama '2b' + models/llama.py LlamaConfig defaults
    # (norm_eps 1e-5, rope_theta 500000, untied lm_head); GPT-2 tiktoken vocab padded to 50304
    "dmas-llama-lite-1.7b": dict(n_layers=36, d_model=2048, d_ffn=5120, n_heads=32, n_kv_heads=8, vocab_size=50304,
                                 seq_len=1024, rope_theta=500000.0),
}

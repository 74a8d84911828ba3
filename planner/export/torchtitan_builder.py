"""The model builder written into the torchtitan export's module (planner/export/torchtitan.py).

Fixed text: it reads the constants the exporter writes above it (N_LAYERS, DIM, ..., NORM,
ATTN_BIAS, FFN_BIAS, the init stds) and builds a ``Llama3Model.Config`` from torchtitan 0.3.0's
public config classes only (``make_gqa_config``, ``make_ffn_config``, ``RMSNorm``/``LayerNorm``,
``Linear.Config.bias``), no private torchtitan helpers.
"""
from __future__ import annotations

#: The model builder of the generated module (fixed text; it reads the constants above it).
MODEL_BUILDER = """\
def _normal(std):
    if std == 0:
        return {'weight': nn.init.zeros_, 'bias': nn.init.zeros_}
    return {'weight': partial(nn.init.normal_, std=std), 'bias': nn.init.zeros_}


def _norm():
    if NORM == 'layernorm':
        return LayerNorm.Config(normalized_shape=DIM, eps=NORM_EPS,
                                param_init={'weight': nn.init.ones_, 'bias': nn.init.zeros_})
    return RMSNorm.Config(normalized_shape=DIM, eps=NORM_EPS, param_init={'weight': nn.init.ones_})


def _biases(attention, feed_forward):
    \"\"\"Linear.Config.bias on Q, K, V and the output projection (ATTN_BIAS), on w1, w2, w3 (FFN_BIAS).\"\"\"
    if ATTN_BIAS:
        qkv = attention.qkv_linear
        for linear in [getattr(qkv, name) for name in ('wqkv', 'wq', 'wkv') if hasattr(qkv, name)] + [attention.wo]:
            linear.bias = True
    if FFN_BIAS:
        for linear in (feed_forward.w1, feed_forward.w2, feed_forward.w3):
            linear.bias = True


def _layers():
    \"\"\"One Llama3TransformerBlock.Config per layer (our builder; no private torchtitan helpers).\"\"\"
    rope = ComplexRoPE.Config(dim=HEAD_DIM, max_seq_len=SEQ_LEN, theta=ROPE_THETA, scaling='none')
    blocks = []
    for layer_id in range(N_LAYERS):
        out_init = _normal(HIDDEN_STD / (2 * (layer_id + 1)) ** 0.5 if DEPTH_SCALED else HIDDEN_STD)
        attention = make_gqa_config(dim=DIM, n_heads=N_HEADS, n_kv_heads=N_KV_HEADS, head_dim=HEAD_DIM,
                                    wqkv_param_init=_normal(HIDDEN_STD), wo_param_init=out_init,
                                    inner_attention=get_attention_config('flex'), fuse_qkv=QUERY_STD is None,
                                    rope=rope)
        if QUERY_STD is not None:  # a separate wq: its own init (and AdamW group)
            attention.qkv_linear.wq.param_init = _normal(QUERY_STD)
        feed_forward = make_ffn_config(dim=DIM, hidden_dim=FFN, w1_param_init=_normal(HIDDEN_STD),
                                       w2w3_param_init=out_init)
        _biases(attention, feed_forward)
        blocks.append(Llama3TransformerBlock.Config(
            attention_norm=_norm(), ffn_norm=_norm(), attention=attention, feed_forward=feed_forward))
    return blocks


def _model():
    embedding_init = {'weight': skip_param_init if TIED else partial(nn.init.normal_, std=EMBEDDING_STD)}
    return Llama3Model.Config(
        dim=DIM, vocab_size=VOCAB, enable_weight_tying=TIED,
        tok_embeddings=Embedding.Config(num_embeddings=VOCAB, embedding_dim=DIM, param_init=embedding_init),
        norm=_norm(),
        lm_head=Linear.Config(in_features=DIM, out_features=VOCAB, param_init=_normal(OUTPUT_STD)),
        layers=_layers(),
    )
"""

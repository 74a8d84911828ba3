"""Parameter counts of real transformers LlamaForCausalLM models, built on the meta device.

Runs in a subprocess that blocks torchvision: Llama needs none, and the torchvision wheel that mup's
declared requirements pull in does not import beside the CPU torch. Shared by tests/test_shape.py
and tests/test_export_hf.py.
"""
from __future__ import annotations

import json
import subprocess
import sys

_SCRIPT = """
import json, sys
sys.modules["torchvision"] = None
try:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
except Exception as e:
    print(f"{type(e).__name__}: {e}")
    sys.exit(77)
torch.set_num_threads(1)
out = {}
for name, cfg in json.loads(sys.argv[1]).items():
    # a str is an exported folder (transformers reads its config.json), a dict a LlamaConfig
    config = LlamaConfig.from_pretrained(cfg) if isinstance(cfg, str) else LlamaConfig(**cfg)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    out[name] = sum(p.numel() for p in model.parameters())  # tied weights are yielded once
print(json.dumps(out))
"""


def meta_param_counts(configs: dict[str, dict | str]) -> tuple[dict[str, int] | None, str]:
    """``({name: count}, "")``, or ``(None, why)`` when transformers' Llama cannot be imported."""
    r = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(configs)], capture_output=True, text=True,
                       timeout=300)
    if r.returncode == 77:
        return None, f"transformers' Llama is not importable here ({r.stdout.strip()})"
    if r.returncode != 0:
        raise AssertionError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1]), ""

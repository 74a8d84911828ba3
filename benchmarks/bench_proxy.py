"""Proxy-trainer speed, measured side by side in one run (medians of interleaved repeats).

    python benchmarks/bench_proxy.py [--width 256] [--layers 2] [--batch 8] [--seq 128] [--steps 10]
                                     [--repeats 5] [--compile] [--json]

Prints: μP / SP tokens/s ratio (goal >= 0.95); achieved model FLOP/s (PaLM count from
planner.shape.ModelShape, 6 N_matmul + 12 L H Q T per token) over this CPU's torch.matmul peak at
the same thread count (goal >= 0.5 at width 256); 1 thread vs 2 threads vs 2 processes; and,
with --compile, torch.compile on/off. The machine may be shared: numbers are medians.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import time

import torch
import torch.nn.functional as F

from proxy_train.config import TrainConfig
from proxy_train.model import build_model, model_config
from proxy_train.optim import make_optimizer

VOCAB = 4096


def _setup(param: str, a, compile_: bool = False):
    torch.manual_seed(0)
    mcfg = model_config(VOCAB, a.width, a.layers, head_dim=32, parameterization=param, max_seq_len=a.seq)
    model = build_model(mcfg, base_width=min(128, a.width))
    opt = make_optimizer(model, TrainConfig(data="-", d_model=a.width, n_layers=a.layers, parameterization=param,
                                            base_width=min(128, a.width)))
    fwd = torch.compile(model) if compile_ else model
    x = torch.randint(0, VOCAB, (a.batch, a.seq + 1))
    return model, opt, fwd, x[:, :-1].contiguous(), x[:, 1:].contiguous()


def _steps(setup, n: int) -> float:
    model, opt, fwd, x, y = setup
    t0 = time.perf_counter()
    for _ in range(n):
        loss = F.cross_entropy(fwd(x).view(-1, VOCAB), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return time.perf_counter() - t0


def tokens_per_s(setup, a) -> float:
    return a.steps * a.batch * a.seq / _steps(setup, a.steps)


def matmul_peak(threads: int, n: int = 1024, reps: int = 10) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b)
        best.append(2 * n ** 3 * reps / (time.perf_counter() - t0))
    return statistics.median(best)


def _worker(args_dict, q):
    torch.set_num_threads(1)
    a = argparse.Namespace(**args_dict)
    s = _setup("mup", a)
    _steps(s, 2)
    q.put(tokens_per_s(s, a))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--compile", action="store_true", help="also measure torch.compile on/off")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    shape = model_config(VOCAB, a.width, a.layers, head_dim=32, max_seq_len=a.seq).shape
    fpt = shape.flops_per_token_palm
    res: dict = {"config": vars(a), "flops_per_token_palm": fpt, "note": "shared machine; medians of interleaved repeats"}

    torch.set_num_threads(1)
    mu, sp = _setup("mup", a), _setup("sp", a)
    _steps(mu, 2), _steps(sp, 2)  # warm up
    t_mu, t_sp = [], []
    for _ in range(a.repeats):  # interleaved
        t_mu.append(tokens_per_s(mu, a))
        t_sp.append(tokens_per_s(sp, a))
    res["tokens_per_s_mup_1t"] = statistics.median(t_mu)
    res["tokens_per_s_sp_1t"] = statistics.median(t_sp)
    res["mup_over_sp"] = statistics.median(m / s for m, s in zip(t_mu, t_sp))
    peak1 = matmul_peak(1)
    res["matmul_peak_flops_1t"] = peak1
    res["mfu_vs_matmul_peak_1t"] = res["tokens_per_s_mup_1t"] * fpt / peak1

    torch.set_num_threads(2)
    t2 = [tokens_per_s(mu, a) for _ in range(a.repeats)]
    res["tokens_per_s_mup_2t"] = statistics.median(t2)
    peak2 = matmul_peak(2)
    res["matmul_peak_flops_2t"] = peak2
    res["mfu_vs_matmul_peak_2t"] = res["tokens_per_s_mup_2t"] * fpt / peak2
    torch.set_num_threads(1)

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(vars(a), q)) for _ in range(2)]
    for pr in procs:
        pr.start()
    res["tokens_per_s_2proc_total"] = sum(q.get() for _ in procs)
    for pr in procs:
        pr.join()
    res["two_threads_over_one"] = res["tokens_per_s_mup_2t"] / res["tokens_per_s_mup_1t"]
    res["two_procs_over_one"] = res["tokens_per_s_2proc_total"] / res["tokens_per_s_mup_1t"]

    if a.compile:
        comp = _setup("mup", a, compile_=True)
        t0 = time.perf_counter()
        _steps(comp, 2)
        res["compile_seconds"] = time.perf_counter() - t0
        tc, te = [], []
        for _ in range(a.repeats):
            tc.append(tokens_per_s(comp, a))
            te.append(tokens_per_s(mu, a))
        res["compiled_over_eager"] = statistics.median(c / e for c, e in zip(tc, te))

    if a.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(f"{k:28s} {v:.4g}" if isinstance(v, float) else f"{k:28s} {v}")


if __name__ == "__main__":
    main()

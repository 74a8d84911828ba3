"""`scaleplan attention --run RUN_DIR`: the attention-degeneracy (lazy layer) diagnostic of a finished
run's final weights (RUN_DIR/model.pt), read-only (proxy_train.attention_diagnostic)."""
from __future__ import annotations

from scaleplan.commands import emit, guards


def register(sub) -> None:
    a = sub.add_parser("attention", help="per-layer attention degeneracy (lazy layers) of a finished run",
                       description="Recompute the attention matrices of a finished `scaleplan train` run on fixed "
                                   "validation windows and report, per layer, the mean row maximum, the share of "
                                   "rows at >= 0.9, the mass on the first token and the effective rank "
                                   "(Inheritune, arXiv:2404.08634). Writes nothing.")
    a.add_argument("--run", required=True, metavar="RUN_DIR", help="folder with run.json and model.pt")
    a.add_argument("--data", help="data folder for the validation windows (default: the run's own)")
    a.add_argument("--sequences", type=guards.batch, default=4, help="validation windows (4)")
    a.add_argument("--json", action="store_true", help="print the diagnostic block as JSON")
    a.set_defaults(func=cmd_attention)


def cmd_attention(args) -> int:
    from proxy_train import attention_diagnostic as ad
    from proxy_train.data import TokenData
    from proxy_train.inherit import load_final_model

    model, cfg, rec = load_final_model(args.run)
    data = TokenData(args.data or rec["data"]["path"])
    if data.vocab_size != int(rec["data"]["vocab_size"]):
        from planner.errors import UserError
        raise UserError(f"--data has vocab {data.vocab_size} but the run was trained with vocab "
                        f"{rec['data']['vocab_size']}; give the run's data folder")
    seq_len = min(cfg.seq_len, ad.MAX_SEQ_LEN)
    data.check_seq_len(seq_len)
    block = ad.record(model, data, seq_len, args.sequences)
    if block is None:
        from planner.errors import UserError
        raise UserError(f"the run's windows ({cfg.seq_len} tokens) are shorter than {2 * ad.MIN_KEYS}; nothing to measure")
    head = f"{'layer':>5} {'row max':>8} {'rows>=0.9':>9} {'first tok':>9} {'eff rank':>8} {'k*(90%)':>7}"
    rows = [f"{r['layer']:>5} {r['row_max']:>8.3f} {r['frac_rows_concentrated']:>9.3f} {r['first_token_mass']:>9.3f} "
            f"{r['effective_rank']:>8.1f} {r['approx_rank']:>7.1f}" for r in block["layers"]]
    note = (f"{args.run}: {block['n_sequences']} val windows x {block['seq_len']} tokens; rows with < "
            f"{block['min_keys']} visible keys left out; lazy layers (row max >= 0.9): {block['lazy_layers'] or 'none'}")
    emit(args, block, "\n".join([note, head, *rows]))
    return 0

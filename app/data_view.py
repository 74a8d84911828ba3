"""The Plan page's data mixture: the mixture typed as YAML (the same list `scaleplan plan --mixture
FILE` reads, checked by :func:`planner.plan.data_mixture.read_mixture`) and the plan's
``data_repetition`` section as a table (epochs per source, effective tokens, the predicted loss
penalty of repeating it; Muennighoff et al. 2023's data-constrained law, planner/data_constrained.py).
Reshaping only: every number comes from the plan.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from planner.io import parse_yaml

MAX_MIXTURE_CHARS = 20_000  # a mixture of a few hundred sources; the text is parsed, never executed
MIXTURE_EXAMPLE = ("- {prefix: /data/web_text_document, weight: 0.8, unique_tokens: 2.0e12}\n"
                   "- {prefix: /data/code_text_document, weight: 0.2, unique_tokens: 1.5e11}")
MIXTURE_FIX = "write a YAML list of {prefix, weight, unique_tokens}, as `scaleplan plan --mixture` reads"


def mixture_input() -> list | None:
    """The typed mixture, checked (None when the box is empty); UserError when it cannot be used."""
    from planner.plan.data_mixture import read_mixture

    text = st.text_area("Data mixture (YAML; empty = one source, no repetition count)", key="mixture",
                        max_chars=MAX_MIXTURE_CHARS, placeholder=MIXTURE_EXAMPLE, height=110,
                        help="sources with unique_tokens get their epochs counted and the loss penalty of "
                             "repeating them predicted; the Megatron export writes them as --data-path")
    if not text.strip():
        return None
    return read_mixture(parse_yaml(text, "the data mixture", fix=MIXTURE_FIX), "the data mixture")


def repetition_table(rep) -> pd.DataFrame:
    """One row per source of the plan's ``data_repetition`` section."""
    return pd.DataFrame([{
        "source": s.name, "share of tokens": f"{s.weight:.1%}", "tokens": f"{s.tokens:.4g}",
        "unique tokens": f"{s.unique_tokens:.4g}" if s.unique_tokens is not None else "not given (fresh)",
        "epochs": f"{s.epochs:.4g}" if s.epochs is not None else "",
        "effective tokens": f"{s.effective_tokens:.4g}", "loss penalty (nats)": f"{s.loss_penalty:+.5f}",
    } for s in rep.sources])


def show_repetition(plan) -> None:
    """The ``data_repetition`` section: the second-pass-or-fresh comparison and the per-source table."""
    rep = plan.data_repetition
    if rep is None:
        return
    st.subheader("Data repetition")
    pct = rep.loss_penalty / rep.loss_fresh if rep.loss_fresh else 0.0
    st.markdown(f"Up to **{rep.max_epochs:.2f} epochs**; predicted loss {rep.loss_repeated:.4f} nats with this "
                f"repetition vs {rep.loss_fresh:.4f} if every token were fresh (**{rep.loss_penalty:+.4f}**, "
                f"{pct:+.2%}); effective tokens {rep.effective_tokens:.4g} of {rep.tokens:.4g}")
    st.dataframe(repetition_table(rep), hide_index=True)
    st.caption(f"Law: {rep.law}. {rep.assumption}")

"""A typed, read-only view of the Optuna studies in a folder, for the dashboard.

Conventions: a folder's studies are read from its Optuna journal file
(:func:`proxy_train.sweep_storage.find_journal`; ``optuna.journal`` for a scaleplan study folder,
any journal for a foreign one); nothing is written. Trial counts are those of
:class:`proxy_train.trials.TrialCounts`, values are final validation losses in nats/token, and the
table and figures are those of ``scaleplan sweep export`` (:mod:`proxy_train.sweep_export`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy_train.sweep_export import study_figures, trials_frame
from proxy_train.sweep_storage import find_journal, open_journal_studies
from proxy_train.trials import BestTrial, TrialCounts, counts


@dataclass
class SweepSummary:
    """One Optuna study: its counts, best trial and trials table; ``figures()`` draws it."""

    name: str
    counts: TrialCounts
    best: BestTrial | None
    trials: Any                      # pandas.DataFrame (proxy_train.sweep_export.trials_frame)
    _study: Any = field(repr=False)  # the optuna.Study, read only

    def figures(self) -> tuple[dict[str, Any], dict[str, str]]:
        """name -> plotly figure, and the figures skipped (name -> why)."""
        return study_figures(self._study, self.trials)


def summarize_study(name: str, study) -> SweepSummary:
    return SweepSummary(name=name, counts=counts(study), best=BestTrial.of(study), trials=trials_frame(study),
                        _study=study)


def journal_summaries(journal: str | Path) -> dict[str, SweepSummary]:
    """Every study in an Optuna journal file, by name (UserError if the file is not a journal)."""
    return {name: summarize_study(name, st) for name, st in open_journal_studies(journal).items()}


def load_summaries(folder: str | Path | None) -> dict[str, SweepSummary]:
    """The studies of a folder's journal file ({} when it has none)."""
    journal = find_journal(folder)
    return journal_summaries(journal) if journal is not None else {}

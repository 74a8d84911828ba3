"""SLURM array jobs whose tasks are queue workers: ``sbatch_script`` (``--emit-sbatch FILE``, ``--dry-run``).

Conventions (SLURM ``sbatch`` manual, https://slurm.schedmd.com/sbatch.html):
* One array task = one worker process (``#SBATCH --array=0-(N-1)``, ``--ntasks=1``) with the
  resources stated per task: ``--cpus-per-task`` (torch uses that many threads), ``--gres=gpu:1``
  when the workers train on CUDA (SLURM then sets ``CUDA_VISIBLE_DEVICES`` to the task's GPU),
  ``--time`` (``[D-]HH:MM:SS`` or minutes) and ``--output`` (``%A`` = array job id, ``%a`` = task
  index). Tasks that outlive the queue exit at once; a task killed by its time limit loses only the
  point it held, which another worker resumes (:mod:`proxy_train.ladder_queue`).
* The storage URL is written into the script only when it holds no password; otherwise the
  script requires ``$SCALEPLAN_SWEEP_STORAGE`` in the submitting shell (sbatch exports the
  environment by default), so a password is never stored in a file or shown in a process list.
* Every value is shell-quoted (``shlex.quote``); the script is checked with ``bash -n`` in tests.
"""
from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass

from planner.errors import UserError
from planner.provenance import mask_url

STORAGE_ENV = "SCALEPLAN_SWEEP_STORAGE"
_TIME = re.compile(r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$|^\d+$")


@dataclass
class ArrayJob:
    """An array of ``tasks`` identical workers, each running ``command`` (a list of arguments)."""
    name: str
    tasks: int
    cpus_per_task: int = 1
    gpus_per_task: int = 0
    time: str = "04:00:00"
    output: str = "slurm-%x-%A_%a.out"
    partition: str | None = None
    mem: str | None = None
    account: str | None = None

    def check(self) -> "ArrayJob":
        if self.tasks < 1:
            raise UserError(f"--array-tasks must be >= 1, got {self.tasks}")
        if self.cpus_per_task < 1:
            raise UserError(f"--cpus-per-task must be >= 1, got {self.cpus_per_task}")
        if not _TIME.match(self.time):
            raise UserError(f"--time must be a SLURM time like 04:00:00, 1-12:00:00 or 90 (minutes), got {self.time!r}")
        for name in ("name", "output", "partition", "mem", "account"):
            v = getattr(self, name)
            if v is not None and (not v or any(c in v for c in "\n\r")):
                raise UserError(f"SLURM {name} must be a non-empty single line, got {v!r}")
        return self


def _directives(job: ArrayJob) -> list[str]:
    q = shlex.quote
    lines = [f"#SBATCH --job-name={q(job.name)}", f"#SBATCH --array=0-{job.tasks - 1}", "#SBATCH --ntasks=1",
             f"#SBATCH --cpus-per-task={job.cpus_per_task}"]
    if job.gpus_per_task:
        lines.append(f"#SBATCH --gres=gpu:{job.gpus_per_task}")
    lines += [f"#SBATCH --time={job.time}", f"#SBATCH --output={q(job.output)}"]
    for opt, v in (("partition", job.partition), ("mem", job.mem), ("account", job.account)):
        if v:
            lines.append(f"#SBATCH --{opt}={q(v)}")
    return lines


def storage_argument(url: str) -> tuple[list[str], list[str]]:
    """(arguments for the worker command, shell lines before it) for a storage URL."""
    if mask_url(url) != url:  # holds a password
        return [], [f': "${{{STORAGE_ENV}:?export {STORAGE_ENV}=<the storage URL with its password> before sbatch}}"']
    return ["--storage", url], []


def sbatch_script(job: ArrayJob, worker_args: list[str], *, storage: str, python: str | None = None,
                  comment: str = "") -> str:
    """The text of an sbatch file running ``python -m scaleplan.cli WORKER_ARGS`` in every array task."""
    job.check()
    store_args, pre = storage_argument(storage)
    cmd = [python or sys.executable, "-m", "scaleplan.cli", *map(str, worker_args), *store_args]
    lines = ["#!/bin/bash", *_directives(job), "",
             f"# {comment}" if comment else "# scaleplan queue workers",
             f"# storage: {mask_url(storage)}; one worker per array task",
             "set -euo pipefail", *pre,
             f"export OMP_NUM_THREADS={job.cpus_per_task}",
             'echo "worker $(hostname) array task ${SLURM_ARRAY_TASK_ID:-0} of job ${SLURM_ARRAY_JOB_ID:-none}"',
             "exec " + " ".join(shlex.quote(c) for c in cmd)]
    return "\n".join(lines) + "\n"


def require_shared_storage(url: str, command: str) -> None:
    """An array job's tasks are separate commands on separate machines: they need an RDB storage
    (``postgresql://``...; heartbeats, row locks). A journal study is owned by one command
    (``proxy_train.study.StudyLock``) and its file locks are unsafe over NFS (Optuna's JournalFileBackend docs)."""
    from proxy_train.sweep_storage import is_rdb

    if not is_rdb(url):
        raise UserError(f"`scaleplan {command} --emit-sbatch` needs --storage postgresql://user@host/db (or "
                        f"${STORAGE_ENV}): the array's workers run on many machines; a journal file serves one "
                        "command on one machine (--workers N)")


def emit_sbatch(job: ArrayJob, worker_args: list[str], *, storage: str, path: str | None, dry_run: bool,
                comment: str = "") -> str:
    """Write the sbatch file to ``path`` atomically (or print it with ``dry_run``); returns its text."""
    from pathlib import Path

    from planner.io import atomic_write

    text = sbatch_script(job, worker_args, storage=storage, comment=comment)
    if dry_run:
        sys.stdout.write(text)
    else:
        atomic_write(Path(path), text)
    return text

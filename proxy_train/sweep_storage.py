"""Where a study's trials live: Optuna storage URLs, opening them, and loading a study folder's study.

Conventions:

* Default storage: an Optuna journal file ``optuna.journal`` inside the study folder
  (``journal:///abs/path``; one host, several processes), recorded in study.yaml as ``journal``.
* ``--storage`` takes any Optuna RDB URL (``postgresql://``, ``mysql://``, ``sqlite:///``); study.yaml
  records it with the password masked (``planner.provenance.mask_url``), so a command that needs
  the password gets it from ``--storage`` or the environment variable ``SCALEPLAN_SWEEP_STORAGE``
  (worker processes get it that way, so it never appears in a process list).
* :func:`resolve_storage` is the one place that turns those into a URL.
* Under an RDB storage each worker sends a heartbeat; a trial whose heartbeat stops is failed by
  a surviving worker and re-enqueued by Optuna's ``RetryHeartbeatStaleTrialCallback(max_retry=3)``.
  The journal file storage has no heartbeat (optuna/storages/_heartbeat.py: only RDBStorage
  implements ``BaseHeartbeat``); see :mod:`proxy_train.workers` for its repair on rerun.
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

from planner.errors import UserError
from planner.provenance import mask_url
from proxy_train.study import StudyMeta, read_study_meta
from proxy_train.sweep_space import derived_seed, make_pruner, make_sampler

STORAGE_ENV = "SCALEPLAN_SWEEP_STORAGE"
JOURNAL_NAME = "optuna.journal"
JOURNAL_LABEL = "journal"  # how study.yaml names the default storage
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")
# Journal files the dashboard recognises in a folder (the first match is used).
JOURNAL_GLOBS = (JOURNAL_NAME, "*.journal", "*journal*.log", "journal*", "optuna*.log")


def is_rdb(url: str | None) -> bool:
    return bool(url) and url.split(":", 1)[0].split("+", 1)[0].lower() in RDB_SCHEMES


def is_journal(url: str) -> bool:
    return url.startswith("journal:")


def journal_url(study_dir: str | Path) -> str:
    """The default storage: an Optuna journal file inside the study folder."""
    return f"journal://{(Path(study_dir) / JOURNAL_NAME).resolve()}"


def storage_label(url: str) -> str:
    """How study.yaml records a storage: ``journal``, or the URL with its password masked."""
    return JOURNAL_LABEL if is_journal(url) else mask_url(url)


def resolve_storage(study_dir: str | Path, storage: str | None = None, *, meta: StudyMeta | None = None) -> str:
    """The storage URL of a study.

    ``storage`` (``--storage``) wins. Without ``meta`` (a study being created or resumed by
    ``scaleplan sweep``) the default is the journal file in the folder. With ``meta`` (an existing
    study: workers, export, transfer analysis): ``$SCALEPLAN_SWEEP_STORAGE``, else the storage
    recorded in study.yaml; a recorded URL with a masked password is a UserError.
    """
    if storage:
        return storage
    if meta is None:
        return journal_url(study_dir)
    env = os.environ.get(STORAGE_ENV)
    if env:
        return env
    if meta.storage == JOURNAL_LABEL:
        return journal_url(study_dir)
    if "***" in meta.storage:
        raise UserError(f"the storage of {study_dir} needs a password; pass --storage URL or set {STORAGE_ENV}")
    return meta.storage


def _open_journal(path: Path):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except OSError as e:
        raise UserError(f"cannot open journal storage {path} ({e.strerror}); choose a writable "
                        "--study folder") from None
    except ValueError as e:  # json.JSONDecodeError: a record in the middle is not JSON
        raise UserError(f"journal {path} is corrupt ({e}); restore it from a backup or start a new "
                        "--study folder") from None


def _rdb_url_and_kwargs(url: str, heartbeat_interval: int | None, grace_period: int | None,
                        connect_timeout: int) -> tuple[str, dict]:
    """The SQLAlchemy URL (driver chosen) and RDBStorage keywords (timeouts, heartbeat)."""
    import optuna

    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    base = scheme.split("+", 1)[0]
    connect_args: dict = {}
    if base in ("postgresql", "postgres", "mysql", "mariadb"):
        connect_args["connect_timeout"] = connect_timeout
    elif base == "sqlite":
        connect_args["timeout"] = 30  # waits on "database is locked" (Optuna FAQ)
    kwargs: dict = {"engine_kwargs": {"connect_args": connect_args}}
    if heartbeat_interval:
        kwargs.update(
            heartbeat_interval=int(heartbeat_interval),
            grace_period=int(grace_period or 2 * heartbeat_interval),
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
        )
    if base == "postgres":  # SQLAlchemy 2 only knows the long name
        url = "postgresql" + url[len("postgres"):]
        scheme = "postgresql" + scheme[len("postgres"):]
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; use psycopg2 when only it is there.
    if (scheme == "postgresql" and importlib.util.find_spec("psycopg") is None
            and importlib.util.find_spec("psycopg2") is not None):
        url = "postgresql+psycopg2" + url[len("postgresql"):]
    return url, kwargs


def open_storage(url: str, *, heartbeat_interval: int | None = None, grace_period: int | None = None,
                 connect_timeout: int = 5):
    """Open an Optuna storage from a URL; bad or unreachable storage -> one-line ``UserError``.

    ``journal:///abs/path`` (or a path ending in ``.journal``) -> ``JournalStorage`` with a file
    backend. ``sqlite:///``, ``postgresql://``, ``mysql://`` -> ``RDBStorage``; with
    ``heartbeat_interval`` the workers send heartbeats and stale trials are retried.
    ``connect_timeout`` (seconds) keeps an unreachable server from hanging the command.
    """
    import optuna

    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "journal" or (not scheme and url.endswith(".journal")):
        return _open_journal(Path(url.split("://", 1)[1] if scheme else url))  # journal:///abs/path -> /abs/path
    if scheme.split("+", 1)[0] not in RDB_SCHEMES:
        raise UserError(f"unknown storage URL {mask_url(url)!r}; use an Optuna storage URL "
                        "(postgresql://user:pass@host/db, mysql://..., sqlite:///file.db) or leave "
                        "--storage out for a journal file in the study folder")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url, kwargs = _rdb_url_and_kwargs(url, heartbeat_interval, grace_period, connect_timeout)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # RetryHeartbeatStaleTrialCallback is "experimental"
            return optuna.storages.RDBStorage(url, **kwargs)
    except ImportError as e:
        raise UserError(f"storage {mask_url(url)}: database driver missing ({e.name or e}); "
                        "install it (e.g. psycopg2-binary for postgresql, pymysql for mysql)") from None
    except Exception as e:  # sqlalchemy OperationalError / ArgumentError / NoSuchModuleError ...
        first = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"cannot use storage {mask_url(url)}: {first}; check the URL, that the "
                        "server runs and accepts connections, and the user/password/database") from None


def load_study(study_dir: str | Path, url: str, meta: StudyMeta, *, worker_id: int = 0, create: bool = False):
    """Open (or with ``create`` create) the folder's study with this worker's sampler and the pruner."""
    import optuna

    name = meta.study_name or Path(study_dir).resolve().name
    if not create and is_journal(url) and not Path(url.split("://", 1)[1]).exists():
        raise UserError(f"study {name} not found in {mask_url(url)} (the journal file is missing); "
                        "restore it or run `scaleplan sweep` first")  # opening would create an empty one
    storage = open_storage(url, heartbeat_interval=meta.runtime.heartbeat_interval,
                           grace_period=meta.runtime.grace_period)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if create:
        try:
            optuna.create_study(study_name=name, storage=storage, direction="minimize", load_if_exists=True)
        except Exception as e:  # a schema/connection problem on first use
            raise UserError(f"cannot create study {name} in {mask_url(url)}: {str(e).splitlines()[0]}; "
                            "check the storage") from None
    try:
        n_existing = len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
    except KeyError:
        raise UserError(f"study {name} not found in {mask_url(url)}; run `scaleplan sweep` first") from None
    sampler = make_sampler(meta.spec, derived_seed(meta.spec.seed, worker_id, n_existing))
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=make_pruner(meta.spec))


def open_study(study_dir: str | Path, storage: str | None = None, *, worker_id: int = 0):
    """The Optuna study of an existing study folder (study.yaml + its storage); returns (study, meta)."""
    meta = read_study_meta(study_dir)
    url = resolve_storage(study_dir, storage, meta=meta)
    return load_study(study_dir, url, meta, worker_id=worker_id), meta


def find_journal(folder: str | Path | None) -> Path | None:
    """The Optuna journal file inside a folder (``optuna.journal`` first), or None."""
    if folder is None or not Path(folder).is_dir():
        return None
    root = Path(folder).resolve()
    for pattern in JOURNAL_GLOBS:
        for p in sorted(Path(folder).glob(pattern)):
            if p.is_file() and root in p.resolve().parents and not p.name.endswith((".lock", ".tmp")):
                return p  # (a symlink leading outside the folder is skipped)
    return None


def open_journal_studies(journal: str | Path) -> dict:
    """All Optuna studies in a journal file, read only: name -> optuna.Study (no sampler/pruner)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = _open_journal(Path(journal))
        summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
        return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage) for s in summaries}
    except UserError:
        raise
    except Exception as e:  # a truncated or foreign file
        raise UserError(f"cannot read Optuna journal {journal} ({type(e).__name__}: {e}); "
                        "check that it is an Optuna journal file") from None

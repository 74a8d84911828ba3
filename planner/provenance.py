"""Provenance: the command line that made an artefact, as recorded in headers and ``meta`` blocks.

Conventions: the recorded command is ``scaleplan`` followed by the arguments exactly as typed,
shell-quoted (``shlex.join``) so it can be pasted back into a shell; any password in a storage URL
(``--storage URL`` or ``--storage=URL``) is replaced by ``***``.
"""
from __future__ import annotations

import shlex
import sys


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for study.yaml, headers and messages)."""
    if "://" not in url or "@" not in url:
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: mask user:pass@ by hand
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"


def _masked(argv: list[str]) -> list[str]:
    out, mask_next = [], False
    for a in argv:
        if mask_next:
            a, mask_next = mask_url(a), False
        elif a == "--storage":
            mask_next = True
        elif a.startswith("--storage="):
            a = "--storage=" + mask_url(a.split("=", 1)[1])
        out.append(a)
    return out


def command_line(argv: list[str] | None = None, *, default: str = "scaleplan") -> str:
    """``scaleplan ARGS`` for ``argv`` (default: this process's arguments), quoted and masked.

    ``default`` is returned when there are no arguments to record (a library call, not the CLI).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if argv is None and not (sys.argv and sys.argv[0]):
        return default
    return "scaleplan " + shlex.join(_masked(args)) if args else default

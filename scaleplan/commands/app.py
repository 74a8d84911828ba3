"""`scaleplan app`: start the Streamlit dashboard on this machine (local only by default).

The server command itself is :func:`app.server.streamlit_command` (a list of arguments, no shell).
"""
from __future__ import annotations

import argparse
import ipaddress
import re
import shlex
import subprocess
import sys
from pathlib import Path

from planner.errors import UserError
from scaleplan.commands import positive_int

_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def _host(text: str) -> str:
    """argparse type: an IP address or a host name (letters, digits, dots, hyphens)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected an IP address or host name like 127.0.0.1, got {text!r}")
    return text


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the dashboard on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """The warning printed before serving on an address other machines can reach, else None."""
    if is_loopback(host):
        return None
    where = "every network interface of this machine" if host in ("0.0.0.0", "::") else f"address {host}"
    return (f"warning: --host {host} exposes the dashboard on {where}: anyone who can reach port {port} can "
            "read the studies folder through it (there is no login); use --host 127.0.0.1 unless you mean it")


def _port(text: str) -> int:
    v = positive_int(text)
    if v > 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 1-65535, got {text!r}")
    return v


def _run(args: argparse.Namespace) -> int:
    studies = Path(args.studies).expanduser().resolve()
    if studies.exists() and not studies.is_dir():
        raise UserError(f"--studies {studies} is a file; pass the folder that holds your study folders")
    if not studies.exists():
        print(f"note: studies folder {studies} does not exist yet; the dashboard shows published laws only",
              file=sys.stderr)
    from app.server import streamlit_command

    cmd = streamlit_command(args.port, args.host, studies)
    warning = exposure_warning(args.host, args.port)
    if warning:
        print(warning, file=sys.stderr)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    print(f"scaleplan dashboard on http://{args.host}:{args.port} (studies: {studies}); Ctrl-C stops it",
          file=sys.stderr)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0


def register(sub) -> None:
    p = sub.add_parser(
        "app",
        help="the dashboard: budget -> launchable plan, scaling fits, sweeps, coordinate checks",
        description="Start the Streamlit dashboard (local only by default). Pages: Plan, Scaling fit, "
                    "Sweeps, Coordinate check. Works without any study (published laws only).",
    )
    p.add_argument("--port", type=_port, default=8501, help="TCP port (default 8501)")
    p.add_argument("--host", type=_host, default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    p.add_argument("--studies", default="studies",
                   help="folder holding study folders (default ./studies); the app reads nothing outside it")
    p.add_argument("--dry-run", action="store_true", help="print the streamlit command instead of running it")
    p.set_defaults(func=_run)

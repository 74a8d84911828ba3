"""What this machine offers a proxy job: the CPU cores it may use and which processes are alive.

Linux conventions: ``os.sched_getaffinity`` is the set of cores this process may run on (a cgroup or
``taskset`` limit, not the machine's total); a zombie process (killed, not yet reaped by its parent)
counts as dead (state ``Z`` in ``/proc/<pid>/stat``, proc(5)).
"""
from __future__ import annotations

import os
from pathlib import Path


def usable_cores() -> int:
    """CPU cores this process may run on (a config may come from a larger machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host; a zombie is dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(pid, 0) succeeded

"""Process hygiene for training: Ctrl-C stops at a step boundary, workers die with their parent.

Conventions:

* **Graceful SIGINT.** While :func:`graceful_sigint` is active (``proxy_train.train`` wraps every
  run in it), SIGINT only sets a flag; ``Trainer.run_until`` checks :func:`stop_requested` between
  optimizer steps and raises :class:`StopRequested` there, so the checkpoint then written holds a
  complete step (model, optimizer, data generator, RNG and curves agree) and a resumed run equals
  an uninterrupted one bit for bit on CPU. A second SIGINT in an interactive process interrupts at
  once (``KeyboardInterrupt``, no checkpoint written: the last periodic one stays valid).
  ``StopRequested`` subclasses ``KeyboardInterrupt`` so every existing Ctrl-C path (CLI exit 130,
  the sweep's ``interrupted`` trials) treats it as an interrupt. Python runs signal handlers in the
  main thread only (docs: ``signal`` module, "Signals and threads"); elsewhere the context is a no-op.
* **Worker processes** (ladder pool, sweep workers) call :func:`install_worker_sigint`: the flag
  handler stays installed for the whole process and a repeated SIGINT never interrupts mid-step
  (a terminal Ctrl-C reaches the whole process group and the parent passes it on as well).
* **Parent death.** :func:`die_with_parent` asks the Linux kernel (``prctl(PR_SET_PDEATHSIG,
  SIGKILL)``, man 2 prctl) to kill the worker when the thread that started it exits, so a SIGKILLed
  ladder or sweep leaves no worker training. Chosen over a polling thread because the kernel
  delivers it even while the worker is inside a long C call and costs nothing per step; the
  ``getppid()`` check right after closes the race of a parent that died before the call. Other
  systems get a daemon thread polling ``os.getppid()`` once a second.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_ENV = "SCALEPLAN_PARENT_PID"


class StopRequested(KeyboardInterrupt):
    """Raised at a step boundary after a SIGINT; the state there is complete and checkpointed."""


class _Flag:
    requested = False
    hard_on_second = True


def _handler(signum, frame) -> None:
    if _Flag.requested and _Flag.hard_on_second:
        raise KeyboardInterrupt
    _Flag.requested = True


def stop_requested() -> bool:
    """True once SIGINT arrived under :func:`graceful_sigint` or in a worker process."""
    return _Flag.requested


def request_stop() -> None:
    """Ask the running loop to stop at its next step boundary (what a SIGINT does)."""
    _Flag.requested = True


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def graceful_sigint():
    """SIGINT sets a flag instead of raising (see the module docstring); restored on exit."""
    current = signal.getsignal(signal.SIGINT)
    if not _in_main_thread() or current is _handler or current is signal.SIG_IGN:
        yield  # nested, off the main thread, or started with SIGINT ignored (nohup, `cmd &`): leave as is
        return
    previous = signal.signal(signal.SIGINT, _handler)
    _Flag.requested, _Flag.hard_on_second = False, True
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _Flag.requested = False


def install_worker_sigint() -> None:
    """In a worker process: SIGINT only ever sets the stop flag (the parent kills if need be)."""
    _Flag.requested, _Flag.hard_on_second = False, False
    signal.signal(signal.SIGINT, _handler)


def die_with_parent(parent_pid: int | None = None) -> str:
    """Make this process die when its parent does; returns the mechanism used ("prctl" | "watchdog")."""
    parent_pid = parent_pid or os.getppid()
    how = "watchdog"
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
                how = "prctl"
        except (OSError, AttributeError):
            pass
    if how == "watchdog":
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="parent-watchdog").start()
    if os.getppid() != parent_pid:  # the parent died before the request: nobody waits for us
        os._exit(1)
    return how


def _watch_parent(parent_pid: int) -> None:
    import time

    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)

"""Stopping a long-running sampler on a signal without a KeyboardInterrupt in the middle of it.

One helper for the CLI (``opscore ash run``) and the flows (``ash``, ``ash-fleet``): SIGINT (Ctrl-C,
and what a Prefect worker forwards to its flow runs when it shuts down) and SIGTERM (a plain
``kill``, a cancelled run) set an event the sampler loop waits on, so it stops at its next tick,
flushes and releases its lease. A KeyboardInterrupt raised wherever the main thread happens to
be (between a lock's acquire and its ``with`` block: rich's live status, the logging module)
leaves the lock held and the process hung at exit with its sampler threads still sampling: seen
with ``ash run`` under load, and with an ``ash-fleet`` flow run that kept its target's lease for
minutes after its worker was stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["stop_on_signals"]


@contextlib.contextmanager
def stop_on_signals(watch_parent: bool = False, every_s: float = 1.0) -> Iterator[threading.Event]:
    """Yield an event that SIGINT or SIGTERM sets (instead of raising KeyboardInterrupt or
    ending the process); a second SIGINT raises KeyboardInterrupt as usual. The previous
    handlers come back at exit. Outside the main thread (no signal handlers there) the event is
    only set by the caller.

    ``watch_parent``: also set it when this process's parent goes away (checked every
    ``every_s``). A Prefect process worker starts each flow run in a session of its own and
    does not signal it when it stops (it waits for its runs, then a second interrupt kills the
    worker alone): without this an ASH run outlived its killed worker, sampling and holding
    its targets' leases until its window ended."""
    stop = threading.Event()
    done = threading.Event()
    if watch_parent:
        parent = os.getppid()

        def watch() -> None:
            while not done.wait(every_s):
                if os.getppid() != parent:  # reparented: the parent died
                    stop.set()
                    return

        threading.Thread(target=watch, name="opscore-parent-watch", daemon=True).start()
    try:
        if threading.current_thread() is not threading.main_thread():
            yield stop
            return
        with _handlers(stop):
            yield stop
    finally:
        done.set()


@contextlib.contextmanager
def _handlers(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` while inside (a second SIGINT interrupts)."""

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    saved = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)

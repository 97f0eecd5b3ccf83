"""ops_core.signals: a sampler's stop event, set by SIGINT/SIGTERM or by its parent dying (an
ASH flow run whose Prefect worker was killed: the worker does not signal its runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from .helpers import wait_until

# the grandchild: waits on the stop event, says when it is set; the middle process only starts
# it (in a session of its own, as a Prefect process worker starts a flow run) and sleeps
GRANDCHILD = textwrap.dedent(
    """
    import sys, time
    from ops_core.signals import stop_on_signals
    with stop_on_signals(watch_parent=True, every_s=0.1) as stop:
        print("ready", flush=True)
        stop.wait(120)
        print("stopped" if stop.is_set() else "timeout", flush=True)
    """
)
MIDDLE = textwrap.dedent(
    """
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=open(sys.argv[2], "w"),
                     start_new_session=True)
    time.sleep(600)
    """
)


def test_a_run_whose_parent_dies_stops(tmp_path):
    out = tmp_path / "grandchild.out"
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE, GRANDCHILD, str(out)])
    try:
        wait_until(lambda: "ready" in out.read_text() if out.exists() else False, timeout=60,
                   step=0.1, what="the grandchild waiting")  # fmt: skip
        assert "stopped" not in out.read_text()
        os.kill(middle.pid, signal.SIGKILL)  # the worker killed: no signal reaches its runs
        middle.wait(30)
        wait_until(lambda: "stopped" in out.read_text(), timeout=60, step=0.1,
                   what="the orphaned grandchild to stop")  # fmt: skip
    finally:
        if middle.poll() is None:
            middle.kill()


def test_sigterm_sets_the_event_and_the_handlers_come_back():
    from ops_core.signals import stop_on_signals

    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(10)
    assert signal.getsignal(signal.SIGTERM) is before

"""The fleet sampler's thread-pool mode: blocking connections asked by a small pool of
threads at each whole-second tick (measured against the event loop in bench/fleet_bench.py)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg

from ..errors import OpsCoreError
from .ash import AshCollector
from .ash_fleet_stats import FleetTarget

__all__ = ["ThreadLoop"]


class ThreadLoop:
    """The ``mode="threads"`` loop of :class:`~.ash_fleet.FleetSampler` (a mixin)."""

    def _sample_sync(self, t: FleetTarget, collectors: dict[int, AshCollector], tick: float):
        col = collectors[t.target_id]
        try:
            self.stats.send_ms.append((time.time() - tick) * 1000.0)
            sample_time, rows = col.sample()
        except (psycopg.Error, OpsCoreError) as exc:
            col.close()
            self._failed(t.target_id, "sample", exc)
            return
        finally:
            self._inflight.discard(t.target_id)
        self._took(t.target_id, tick, sample_time, rows)

    def _run_threads(self, stop: threading.Event, until: float | None) -> None:
        collectors = {
            tid: AshCollector(t.dsn, **self.params)  # type: ignore[arg-type]
            for tid, t in self.targets.items()
        }
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ash-fleet")

        def connect(t: FleetTarget) -> None:
            try:
                collectors[t.target_id].connect()
            except (psycopg.Error, OpsCoreError) as exc:
                self._failed(t.target_id, "connect", exc)

        try:
            list(pool.map(connect, self._active()))  # before the first tick
            while not stop.is_set():
                tick = self._next_tick()
                if until is not None and tick > until:
                    break
                if stop.wait(max(0.0, tick - time.time())):
                    break
                self.stats.ticks += 1
                self.stats.dispatch_ms.append((time.time() - tick) * 1000.0)
                for t in self._due(time.monotonic()):
                    self._inflight.add(t.target_id)
                    pool.submit(self._sample_sync, t, collectors, tick)
        finally:
            pool.shutdown(wait=True)
            for c in collectors.values():
                c.close()

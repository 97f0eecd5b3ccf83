"""Model fits that warn: statsmodels reports a fit that did not converge (ConvergenceWarning),
a poorly identified model, and the like through Python's warnings. Those are evidence about
the model, not messages for whoever runs opscore: :func:`caught` keeps them out of pytest's
and the CLI's output and hands them back to be recorded with the model."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: ``warnings.catch_warnings`` swaps the process-wide filters: two threads inside it at once
#: (the alert engine's forecasts, the HTTP API, the app) restore each other's filters and let
#: warnings leak or silence them for good. opscore's fits enter it one at a time.
_LOCK = threading.RLock()


@contextmanager
def caught(into: list[str] | None = None) -> Iterator[None]:
    """Run a fit with its warnings caught; their ``Category: message`` lines (each once) are
    appended to ``into`` when given, else dropped."""
    with _LOCK, warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        yield
    if into is not None:
        for w in got:
            line = f"{w.category.__name__}: {str(w.message).strip().splitlines()[0]}"
            if line not in into:
                into.append(line)

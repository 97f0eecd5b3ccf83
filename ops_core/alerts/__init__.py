"""Alerts: rule definitions and validation (:mod:`.rules`), what each metric reads
(:mod:`.metrics`), evaluation with its firing -> acknowledged -> resolved lifecycle
(:mod:`.evaluate`) and notification delivery by webhook and e-mail (:mod:`.notify`)."""

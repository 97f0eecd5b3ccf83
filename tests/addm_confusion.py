"""Print the ADDM confusion table from the scenario runs' JSONL (``$OPSCORE_ADDM_TABLE``):
expected cause vs top finding per scenario and load, top-1 accuracy on single faults and
cause-set precision/recall/F1 on compound ones.

    python -m tests.addm_confusion [FILE ...]
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from .addm_helpers import TABLE_FILE


def load(paths: list[str]) -> list[dict]:
    rows = []
    for p in paths:
        with open(p) as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    return rows


def summary(rows: list[dict]) -> str:
    out = []
    single = [r for r in rows if len(r.get("expected_set") or []) <= 1]
    compound = [r for r in rows if len(r.get("expected_set") or []) > 1]
    out.append(f"{'scenario':34} {'load':9} {'expected':20} {'top finding':20} ok")
    for r in rows:
        load_ = "neighbour" if r.get("neighbour") else "normal"
        ok = "yes" if r["top"] == r["expected"] else "NO"
        out.append(f"{r['scenario']:34} {load_:9} {r['expected']:20} {r['top']:20} {ok}")
    hits = sum(r["top"] == r["expected"] for r in single)
    if single:
        out.append(
            f"top-1 accuracy, single faults: {hits}/{len(single)} = {hits / len(single):.2f}"
        )
    conf = Counter((r["expected"], r["top"]) for r in single)
    out.append("confusion (expected -> top: count): " + "; ".join(
        f"{e} -> {t}: {n}" for (e, t), n in sorted(conf.items())))  # fmt: skip
    tp = fp = fn = 0
    for r in compound:
        exp, found = set(r["expected_set"]), set(r["found_set"])
        tp += len(exp & found)
        fp += len(found - exp)
        fn += len(exp - found)
    if compound:
        p = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
        out.append(
            f"compound cause sets ({len(compound)} runs): precision {p:.2f}, recall {rc:.2f}, "
            f"F1 {f1:.2f} (found problem types beyond the expected count as false positives)"
        )
    return "\n".join(out)


if __name__ == "__main__":
    print(summary(load(sys.argv[1:] or [str(TABLE_FILE)])))

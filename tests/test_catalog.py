"""The project's copy of the catalog: complete, and every named api function exists."""

import csv
from pathlib import Path

from ops_core import api, catalog

SHARED = Path(__file__).resolve().parents[2] / "shared" / "catalog"


def test_catalog_complete_and_functions_exist():
    ops = catalog.operations()
    assert len(ops) == 163
    for op in ops:
        if op.api_function:
            assert callable(getattr(api, op.api_function, None)), op


def test_catalog_matches_shared_copy():
    if not SHARED.exists():
        import pytest

        pytest.skip("shared/catalog not beside the checkout")
    for name, key in (("endpoints.tsv", "path"), ("graphql.tsv", "operation")):
        theirs = [r[key] for r in csv.DictReader(open(SHARED / name), delimiter="\t")]
        ours = [r[key] for r in catalog._read(name)]
        assert ours == theirs

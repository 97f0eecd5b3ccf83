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


def test_api_modules_do_not_shadow_each_other():
    """ops_core.api star-imports every area: two areas exporting different objects under one
    name would silently replace one of them."""
    import importlib
    import pkgutil

    seen: dict[str, object] = {}
    for m in pkgutil.iter_modules(api.__path__):
        mod = importlib.import_module(f"ops_core.api.{m.name}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            assert seen.setdefault(name, obj) is obj, f"{name} exported twice ({m.name})"

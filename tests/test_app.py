"""Streamlit pages rendered headless with AppTest against the real repository."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ops_core import api

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")


def _run(page: str | None = None) -> AppTest:
    import streamlit as st

    st.cache_data.clear()  # the cache lives in this process across AppTest runs
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    if page:
        at.switch_page(str(Path(MAIN).parent / "pages" / page))
        at.run()
    assert not at.exception, at.exception
    return at


def test_overview_empty_then_with_target(repo, target_db):
    at = _run()
    assert any("No targets registered" in i.value for i in at.info)
    api.add_target("apptest", target_db)
    try:
        at = _run()
        text = " ".join(str(df.value.to_dict()) for df in at.dataframe)
        assert "apptest" in text
        assert at.metric[0].value == "1"
    finally:
        api.remove_target("apptest")


@pytest.mark.usefixtures("repo")
def test_catalog_page():
    at = _run("catalog.py")
    assert at.metric[0].value == "163"

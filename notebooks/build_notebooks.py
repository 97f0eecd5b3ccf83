"""Generate the report notebooks (awr, ash, addm, compare) so they stay tidy and consistent.

Run after changing a layout: ``python notebooks/build_notebooks.py`` (the .ipynb files are
committed). Each notebook: a ``parameters`` cell, a setup cell calling ``ops_core.api`` for the
report model, then one Markdown heading (with its anchor) and one output cell per section of
``ops_core.reports.spec.SECTIONS`` (the one definition of each report's sections).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ops_core.reports import spec as report_spec

HERE = Path(__file__).resolve().parent

SETUP = """\
import warnings

warnings.filterwarnings("ignore")
from ops_core import api
from ops_core.reports import {view} as view
from ops_core.reports.display import setup_plotly

setup_plotly()  # plotly_mimetype+notebook: charts survive nbconvert to HTML
"""

REPORTS = {
    "awr": {
        "title": "AWR report",
        "parameters": 'target = "demo"\nbegin_id = 0  # 0: the last two snapshots\nend_id = 0\n',
        "view": "awr_view",
        "model": "r = api.awr_report(target, begin_id or None, end_id or None)\nview.header(r)",
    },
    "ash": {
        "title": "ASH report",
        "parameters": 'target = "demo"\nbegin = ""  # ISO 8601 UTC; empty: the last hour\nend = ""\n'
        'wait_class = ""\nqueryid = 0\nuser = ""\ndatabase = ""\napplication = ""\n',
        "view": "ash_view",
        "model": "r = api.ash_report(\n    target,\n    begin or None,\n    end or None,\n"
        '    since=None if begin else "1h",\n    wait_class=wait_class or None,\n'
        "    queryid=queryid or None,\n    user=user or None,\n    database=database or None,\n"
        "    application=application or None,\n)\nview.ash_header(r)",
    },
    "addm": {
        "title": "ADDM report",
        "parameters": "analysis_id = 0  # resolved by api.render_report from a range or an id\n",
        "view": "addm_view",
        "model": "a = api.get_addm(analysis_id)\nview.header(a)",
    },
    "compare": {
        "title": "Compare periods",
        "parameters": 'target = "demo"\nbegin1 = 0\nend1 = 0\nbegin2 = 0\nend2 = 0\n'
        'baseline = ""  # a baseline name instead of begin2/end2\n',
        "view": "ash_view",
        "model": "r = api.compare_report(\n    target,\n    begin1,\n    end1,\n"
        "    None if baseline else begin2,\n    None if baseline else end2,\n"
        "    baseline=baseline or None,\n)\nview.compare_header(r)",
    },
}


def build(kind: str) -> nbformat.NotebookNode:
    spec = REPORTS[kind]
    sections = report_spec.SECTIONS[kind]
    params = new_code_cell(spec["parameters"])
    params.metadata["tags"] = ["parameters"]
    cells = [
        new_markdown_cell(f"# {spec['title']}"),
        params,
        new_code_cell(SETUP.format(view=spec["view"])),
        new_code_cell(spec["model"]),
    ]
    for i, sec in enumerate(sections, 1):
        # the anchor the report's table of contents links to
        cells.append(new_markdown_cell(f'<a id="{sec.anchor}"></a>\n\n## {i}. {sec.title}'))
        cells.append(new_code_cell(sec.call))
    for i, cell in enumerate(cells):  # stable ids: rebuilding an unchanged layout changes nothing
        cell.id = f"{kind}-{i:02d}"
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main() -> None:
    for kind in REPORTS:
        path = HERE / f"{kind}_report.ipynb"
        nbformat.write(build(kind), str(path))
        print(path)


if __name__ == "__main__":
    main()

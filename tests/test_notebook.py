"""The batch notebook runs where Jupyter runs it, cleanly, and its script form says the same.

``examples/batch_notebook.ipynb`` runs in a real Jupyter kernel (ipykernel, driven by nbclient)
started in the notebook's own folder, as JupyterLab, Notebook and VS Code start it. Any error and
any output on stderr (warnings, tqdm's "IProgress not found") fails the test.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOK = EXAMPLES / "batch_notebook.ipynb"
SCRIPT = EXAMPLES / "batch_notebook.py"
CELL_TIMEOUT_S = 600
"""Only stops a hung kernel; the whole notebook takes seconds."""

SYNC_HINT = (
    "examples/batch_notebook.ipynb and batch_notebook.py differ: edit one, then run "
    "`.venv/bin/python -m jupytext --sync examples/batch_notebook.ipynb`"
)


def _cells(notebook: Any) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def test_notebook_and_its_script_form_have_the_same_cells() -> None:
    import jupytext
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    script = jupytext.read(SCRIPT, fmt="py:percent")
    assert _cells(notebook) == _cells(script), SYNC_HINT
    assert len(notebook.cells) >= 15
    assert notebook.metadata["jupytext"]["formats"] == "ipynb,py:percent"  # paired in Jupyter
    nbformat.validate(notebook)


def test_notebook_is_shipped_without_outputs() -> None:
    """Outputs would go stale with every code change; the suite runs it instead."""
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], cell.source[:60]
            assert cell.execution_count is None, cell.source[:60]


@pytest.fixture
def isolated_jupyter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec for this very interpreter, and Jupyter/IPython dirs away from the user's."""
    kernel = tmp_path / "jupyter" / "kernels" / "hipscreen-test"
    kernel.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "hipscreen test", "language": "python"}
    (kernel / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugpy's note on frozen modules
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own inline backend, as usual
    monkeypatch.delenv("PYTHONPATH", raising=False)
    return "hipscreen-test"


def _outputs(notebook: Any) -> list[tuple[int, dict[str, Any]]]:
    return [
        (index, output)
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for output in cell.outputs
    ]


@pytest.mark.notebook
@pytest.mark.process
@pytest.mark.slow
def test_notebook_runs_in_a_kernel_started_in_its_folder_without_errors_or_warnings(
    isolated_jupyter: str,
) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=isolated_jupyter,
        timeout=CELL_TIMEOUT_S,
        allow_errors=True,  # collect every error below, with its cell, instead of the first
        resources={"metadata": {"path": str(EXAMPLES)}},  # the kernel's working directory
    )
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started

    problems = [
        f"cell {index}: {output.get('ename', '')} {output.get('evalue', '')}"
        f"{output.get('text', '')}"
        for index, output in _outputs(notebook)
        if output["output_type"] == "error"
        or (output["output_type"] == "stream" and output["name"] == "stderr")
    ]
    assert not problems, "\n".join(problems)

    stdout = "".join(
        output["text"]
        for _, output in _outputs(notebook)
        if output["output_type"] == "stream" and output["name"] == "stdout"
    )
    rich = [output.get("data", {}) for _, output in _outputs(notebook)]
    html = "".join(data.get("text/html", "") for data in rich)
    assert "3,000 rows" in stdout
    assert "hipscreen batch: 3 rows" in html  # assess_many's result shows as a table
    assert "hipscreen assessment for ann" in html
    assert any("application/vnd.jupyter.widget-view+json" in data for data in rich), (
        "the progress bar is not a notebook widget (is ipywidgets installed?)"
    )
    assert any("image/png" in data for data in rich)  # the prevalence chart
    print(f"notebook ran in {seconds:.1f} s")

"""Tutorial 10 in JupyterLab (headless Chromium): it runs to the end on a local Ray started by its kernel, its
trace shows each remote call as `COUNT_PRIMES@ray` under its proxy call (the worker's node and process in its
details), and the calls made inside a worker sit under the remote run. Screenshots in the light and the dark theme."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .harness import REPO_ROOT, LabPage

TUTORIAL = REPO_ROOT / "notebooks" / "10_scaling_out.ipynb"


def _cell_index(source_start: str) -> int:
    cells = json.loads(TUTORIAL.read_text())["cells"]
    matches = [index for index, cell in enumerate(cells) if "".join(cell["source"]).startswith(source_start)]
    assert len(matches) == 1, matches
    return matches[0]


def test_the_scaling_tutorial_runs_and_its_trace_shows_the_remote_calls(lab: LabPage) -> None:
    shutil.copy(REPO_ROOT / "notebooks" / "scaling_tools.py", lab.server.root_dir / "scaling_tools.py")
    lab.open_notebook(TUTORIAL)
    lab.run_all(timeout=240)
    assert lab.cell_errors() == []
    fan_out = _cell_index('miniagents_nb.show(answers["ray"]')
    view = f".jp-Cell:nth-child({fan_out + 1}) .mna-view"
    lab.wait_for_selector(f"{view} .mna-node[data-alias='COUNT_PRIMES@ray']", timeout=30, what="the remote runs")
    remote = lab.texts(
        f"{view} .mna-node[data-alias='COUNT_PRIMES'] .mna-node[data-alias='COUNT_PRIMES@ray'] .mna-node-alias"
    )
    assert remote == ["COUNT_PRIMES@ray"] * 4  # one remote run under each of the four proxy calls
    details = " ".join(lab.texts(f"{view} .mna-node[data-alias='COUNT_PRIMES@ray'] .mna-node-details"))
    assert "ray_node_id" in details
    assert "ray_worker_pid" in details
    lab.screenshot("scaling-tutorial-trace-light", cell=fan_out, output_only=True)
    nested = _cell_index("ray_target(remote_count_primes).pool.close()")
    nested_view = f".jp-Cell:nth-child({nested + 1}) .mna-view"
    inside = lab.texts(
        f"{nested_view} .mna-node[data-alias='SPLIT_COUNT@ray'] .mna-node[data-alias='COUNT_PRIMES'] .mna-node-alias"
    )
    assert inside == ["COUNT_PRIMES", "COUNT_PRIMES"]  # the calls made inside the worker, under the remote run
    lab.screenshot("scaling-tutorial-nested-light", cell=nested, output_only=True)
    lab.use_theme("dark")
    lab.screenshot("scaling-tutorial-trace-dark", cell=fan_out, output_only=True)
    lab.screenshot("scaling-tutorial-nested-dark", cell=nested, output_only=True)
    lab.use_theme("light")


def _trust(lab: LabPage, notebook: Path) -> None:
    """Sign a notebook's content in the lab's own signature database, as `./dev run` does for the tutorials."""
    copy = lab.server.root_dir.parent / "signing" / notebook.name  # the signature is of the content, not the path
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(notebook, copy)
    env = {**os.environ, "JUPYTER_DATA_DIR": str(lab.server.root_dir.parent / "data"), "JUPYTER_PLATFORM_DIRS": "1"}
    trust = Path(sys.executable).with_name("jupyter-trust")
    subprocess.run([str(trust), str(copy)], env=env, check=True, capture_output=True)


def test_the_scaling_tutorial_as_saved_shows_its_trees_and_timelines_without_running(lab: LabPage) -> None:
    # What a fresh clone shows before anything runs: the views as the notebook saved them (their static form: no
    # kernel state), signed as `./dev run` signs the tutorials, in the light and the dark theme.
    fan_out = _cell_index('miniagents_nb.show(answers["ray"]')
    nested = _cell_index("ray_target(remote_count_primes).pool.close()")
    view = f".jp-Cell:nth-child({fan_out + 1}) .mna-view"
    nested_view = f".jp-Cell:nth-child({nested + 1}) .mna-view"
    _trust(lab, TUTORIAL)
    lab.open_notebook(TUTORIAL)
    lab.cell(fan_out).scroll_into_view_if_needed()  # JupyterLab renders the cells in view only
    lab.wait_for_selector(f"{view} .mna-node[data-alias='COUNT_PRIMES@ray']", timeout=30, what="the saved trace")
    remote = lab.texts(
        f"{view} .mna-node[data-alias='COUNT_PRIMES'] .mna-node[data-alias='COUNT_PRIMES@ray'] .mna-node-alias"
    )
    assert remote == ["COUNT_PRIMES@ray"] * 4
    lab.screenshot("scaling-tutorial-saved-trace-light", cell=fan_out, output_only=True)
    lab.cell(nested).scroll_into_view_if_needed()
    lab.wait_for_selector(f"{nested_view} .mna-node[data-alias='SPLIT_COUNT@ray']", timeout=30, what="the saved tree")
    inside = lab.texts(
        f"{nested_view} .mna-node[data-alias='SPLIT_COUNT@ray'] .mna-node[data-alias='COUNT_PRIMES'] .mna-node-alias"
    )
    assert inside == ["COUNT_PRIMES", "COUNT_PRIMES"]
    page_text = lab.page.inner_text("body")
    assert "Error displaying widget" not in page_text
    assert "model not found" not in page_text
    lab.screenshot("scaling-tutorial-saved-nested-light", cell=nested, output_only=True)
    lab.use_theme("dark")
    lab.screenshot("scaling-tutorial-saved-nested-dark", cell=nested, output_only=True)
    lab.cell(fan_out).scroll_into_view_if_needed()
    lab.screenshot("scaling-tutorial-saved-trace-dark", cell=fan_out, output_only=True)
    lab.use_theme("light")


def test_the_scaling_tutorial_unsigned_is_still_readable(lab: LabPage) -> None:
    # An unsigned notebook (someone else's, opened as it is): JupyterLab drops the views' stylesheet and data
    # attributes; the trees stay nested lists of bold names with their states and times. (Content of its own: the
    # signature of the tutorial's content, made by the test above, must not apply.)
    notebook = json.loads(TUTORIAL.read_text())
    notebook["metadata"]["unsigned_copy"] = True
    lab.open_notebook(notebook, "unsigned_scaling_out.ipynb")
    nested = _cell_index("ray_target(remote_count_primes).pool.close()")
    lab.cell(nested).scroll_into_view_if_needed()
    nested_view = f".jp-Cell:nth-child({nested + 1}) .mna-view"
    lab.wait_for_selector(f"{nested_view} .mna-node-alias", timeout=30, what="the saved tree, unstyled")
    aliases = lab.texts(f"{nested_view} .mna-node-alias")
    assert aliases[:4] == ["SPLIT_COUNT", "SPLIT_COUNT@ray", "COUNT_PRIMES", "COUNT_PRIMES"]
    lab.screenshot("scaling-tutorial-unsigned-nested-light", cell=nested, output_only=True)

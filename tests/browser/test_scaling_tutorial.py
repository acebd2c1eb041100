"""Tutorial 10 in JupyterLab (headless Chromium): it runs to the end on a local Ray started by its kernel, its
trace shows each remote call as `COUNT_PRIMES@ray` under its proxy call (the worker's node and process in its
details), and the calls made inside a worker sit under the remote run. Screenshots in the light and the dark theme."""

from __future__ import annotations

import json
import shutil

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

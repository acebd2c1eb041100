"""Tutorial 10 in JupyterLab (headless Chromium): it runs to the end on a local Ray started by its kernel, its
trace shows each remote call as `COUNT_PRIMES@ray` under its proxy call (the worker's node and process in its
details), and the calls made inside a worker sit under the remote run; its timelines show the same calls as lanes
(the `@ray` runs and the worker's own calls indented under their callers, each with a bar of its real duration, the
worker's two counts one after the other). Live and as saved; screenshots in the light and the dark theme."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .harness import REPO_ROOT, VISIBLE_PANEL, LabPage

TUTORIAL = REPO_ROOT / "notebooks" / "10_scaling_out.ipynb"


def _cell_index(source_start: str) -> int:
    cells = json.loads(TUTORIAL.read_text())["cells"]
    matches = [index for index, cell in enumerate(cells) if "".join(cell["source"]).startswith(source_start)]
    assert len(matches) == 1, matches
    return matches[0]


FAN_OUT_LANES = ["PRIME_CENSUS", *["COUNT_PRIMES", "COUNT_PRIMES@ray"] * 4]
NESTED_LANES = ["SPLIT_COUNT", "SPLIT_COUNT@ray", "COUNT_PRIMES", "COUNT_PRIMES"]

# Each lane of a timeline: its alias and status, its label's text, indent and whether the label is cut, and its
# bar's place in percent of the run's span (as the inline style has it: the live and the static form alike).
_JS_LANES = """(sel) => {
  const timeline = document.querySelector(sel);
  if (!timeline) return null;
  const labels = [...timeline.querySelectorAll(".mna-lane-label:not(.mna-axis-spacer)")];
  return [...timeline.querySelectorAll(".mna-lane")].map((lane, i) => {
    const bar = lane.querySelector(".mna-lane-bar");
    const label = labels[i];
    return {
      alias: lane.dataset.alias,
      status: lane.dataset.status,
      label: label.querySelector(".mna-lane-alias").textContent,
      indent: parseFloat(getComputedStyle(label).paddingLeft),
      clipped: label.scrollWidth > label.clientWidth,
      left: bar ? parseFloat(bar.style.left) : null,
      width: bar ? parseFloat(bar.style.width) : null,
    };
  });
}"""


def _timeline_lanes(lab: LabPage, cell: int, expected: list[str]) -> list[dict[str, object]]:
    """The lanes of the cell's timeline, once it shows the `expected` aliases, every call done (the final form)."""
    timeline = f"{VISIBLE_PANEL} .jp-Cell:nth-child({cell + 1}) .mna-view .mna-timeline"
    lab.wait_for_js(
        "([sel, expected]) => { const t = document.querySelector(sel); if (!t || !t.open) return false;"
        " const lanes = [...t.querySelectorAll('.mna-lane')];"
        " return JSON.stringify(lanes.map(l => l.dataset.alias)) === JSON.stringify(expected)"
        " && lanes.every(l => l.dataset.status === 'done'); }",
        [timeline, expected],
        timeout=30,
        what=f"the timeline of cell {cell} to show {expected}, all done (lanes: {{texts}})",
        texts=lambda: lab.page.evaluate(_JS_LANES, timeline),
    )
    lanes: list[dict[str, object]] = lab.page.evaluate(_JS_LANES, timeline)
    return lanes


def _bar(lane: dict[str, object]) -> tuple[float, float]:
    left, width = lane["left"], lane["width"]
    assert isinstance(left, (int, float)), lane  # (JSON: a whole percentage comes as an int)
    assert isinstance(width, (int, float)), lane
    return float(left), float(width)


def _check_timelines(lab: LabPage, fan_out: int, nested: int) -> None:
    """The fan-out's and the nested call's timelines: their lanes, nested as the calls were, each run in a worker
    (`@ray`) and each call made inside one with a bar as long as it took there, the labels whole."""
    lanes = _timeline_lanes(lab, fan_out, FAN_OUT_LANES)
    assert [lane["label"] for lane in lanes] == FAN_OUT_LANES
    assert [lane["indent"] for lane in lanes] == [0.0, *[12.0, 24.0] * 4], lanes  # `@ray` under its proxy call
    assert not any(lane["clipped"] for lane in lanes), lanes
    for lane in lanes:
        _, width = _bar(lane)
        assert width > 0, lane  # it lasted: each count took a while in its worker
    # each remote run lies within its proxy call (which sent the input and then waited for the replies)
    for proxy, remote in zip(lanes[1::2], lanes[2::2], strict=True):
        (proxy_left, proxy_width), (remote_left, remote_width) = _bar(proxy), _bar(remote)
        assert proxy_left <= remote_left + 0.01, (proxy, remote)
        assert remote_left + remote_width <= proxy_left + proxy_width + 0.02, (proxy, remote)

    lanes = _timeline_lanes(lab, nested, NESTED_LANES)
    assert [lane["label"] for lane in lanes] == NESTED_LANES
    assert [lane["indent"] for lane in lanes] == [0.0, 12.0, 24.0, 24.0], lanes  # the worker's calls under its run
    assert not any(lane["clipped"] for lane in lanes), lanes
    (first_left, first_width), (second_left, second_width) = _bar(lanes[2]), _bar(lanes[3])
    assert first_width > 0, lanes
    assert second_width > 0, lanes
    # the two counts ran one after the other in the worker (the moments are the worker's, not the news's)
    assert second_left + 0.02 >= first_left + first_width, lanes


def _timeline_screenshots(lab: LabPage, prefix: str, fan_out: int, nested: int) -> None:
    """The two timelines, with their trees folded to the root's line (the trace screenshots show the trees)."""
    for cell, name in ((fan_out, "timeline"), (nested, "nested-timeline")):
        root = f"{VISIBLE_PANEL} .jp-Cell:nth-child({cell + 1}) .mna-view .mna-node-box"
        aliases = f".jp-Cell:nth-child({cell + 1}) .mna-node-alias"
        for fold in (True, False):
            lab.click(lab.page.locator(f"{root} > .mna-node-line").first, what=f"the root call of cell {cell}")
            lab.wait_for_js(
                "([sel, folded]) => document.querySelector(sel).open === !folded",
                [root, fold],
                timeout=10,
                what=f"the tree of cell {cell} to {'fold' if fold else 'open'} (texts: {{texts}})",
                texts=functools.partial(lab.texts, aliases),
            )
            if fold:
                lab.screenshot(f"{prefix}-{name}", cell=cell, output_only=True)


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
    _check_timelines(lab, fan_out, nested)
    _timeline_screenshots(lab, "scaling-tutorial-light", fan_out, nested)
    lab.use_theme("dark")
    lab.screenshot("scaling-tutorial-trace-dark", cell=fan_out, output_only=True)
    lab.screenshot("scaling-tutorial-nested-dark", cell=nested, output_only=True)
    _timeline_screenshots(lab, "scaling-tutorial-dark", fan_out, nested)
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
    _check_timelines(lab, fan_out, nested)
    _timeline_screenshots(lab, "scaling-tutorial-saved-light", fan_out, nested)
    lab.use_theme("dark")
    lab.screenshot("scaling-tutorial-saved-nested-dark", cell=nested, output_only=True)
    lab.cell(fan_out).scroll_into_view_if_needed()
    lab.screenshot("scaling-tutorial-saved-trace-dark", cell=fan_out, output_only=True)
    _timeline_screenshots(lab, "scaling-tutorial-saved-dark", fan_out, nested)
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

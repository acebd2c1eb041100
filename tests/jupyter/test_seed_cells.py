"""The seeds' examples pasted into a plain notebook (no `%load_ext miniagents_nb`): `MiniAgents().run(main())` works
in a real kernel, prints into its own cell, and "Run All" goes on to the later cells (nbclient sends them back to
back, as JupyterLab does). Outside a kernel, under a running loop, `run()` keeps refusing (tests/test_context.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from miniagents_nb import MiniAgents
from miniagents_nb.errors import RunningEventLoopError

from .kernel_harness import ARTIFACTS, Kernel
from .test_kernel import SEED_CELL

pytestmark = pytest.mark.timeout(120)


def _plain(output: dict[str, Any]) -> str:
    if output["output_type"] == "stream":
        return str(output["text"])
    if output["output_type"] == "error":
        return f"{output['ename']}: {output['evalue']}"
    return str(output.get("data", {}).get("text/plain", ""))


def test_run_all_with_the_seed_examples_in_a_plain_notebook() -> None:
    cells = [
        SEED_CELL,
        'print("the next cell ran")',
        SEED_CELL.replace('"Hi there!"', '"second time"'),
        "import sys\nprint('miniagents_nb.jupyter' in sys.modules)",  # the core did it alone
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(notebook, kernel_name="python3", timeout=60, allow_errors=True, startup_timeout=60)
    client.execute()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, ARTIFACTS / "seed_cells_plain.ipynb")

    assert [cell.execution_count for cell in notebook.cells] == [1, 2, 3, 4]  # every cell ran
    outputs = ["".join(_plain(output) for output in cell.outputs) for cell in notebook.cells]
    assert outputs == [
        "Hello from aggregator\nSub-agent received: Hi there!\n",
        "the next cell ran\n",
        "Hello from aggregator\nSub-agent received: second time\n",
        "False\n",
    ]


async def test_under_a_running_loop_outside_a_kernel_run_still_refuses() -> None:
    async def main() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RunningEventLoopError, match="arun"):
        MiniAgents().run(main())


def test_interrupting_the_seed_run_in_a_plain_notebook() -> None:
    kernel = Kernel(ARTIFACTS / "seed_cells_plain.log")
    try:
        run = kernel.start(
            "import asyncio\n"
            "from miniagents_nb import MiniAgents\n"
            "async def main():\n"
            "    print('main started', flush=True)\n"
            "    await asyncio.sleep(60)\n"
            "MiniAgents().run(main())"
        )
        kernel.wait(run, until=lambda m: m["msg_type"] == "stream" and "main started" in m["content"]["text"])
        kernel.km.interrupt_kernel()
        kernel.wait(run)
        assert run.error is not None
        assert run.error["ename"] == "KeyboardInterrupt"
        after = kernel.ok("import threading\nprint([t.name for t in threading.enumerate() if 'facade' in t.name])")
        assert after.stdout == "[]\n"  # the worker thread and its loop are gone
    finally:
        kernel.close()

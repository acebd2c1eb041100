"""Smoke test of the browser harness: a notebook runs in JupyterLab in headless Chromium, and a widget updated
by a background asyncio task on the kernel's loop updates live in the real front end."""

from __future__ import annotations

import re

from .harness import LabPage

PRINT_CELL = """\
import os

import miniagents_nb

print("smoke: hello from the kernel")
print("MINIAGENTS_NB_LLM =", os.environ.get("MINIAGENTS_NB_LLM"))
"""

# The view tells the kernel once it is on screen, so that the updates are not all over before the front end
# has loaded the widget's ES module; then a task on the kernel's loop sets the synced trait 5 times.
WIDGET_CELL = '''\
import asyncio

import anywidget
import traitlets


class SmokeTicker(anywidget.AnyWidget):
    _esm = """
    export default {
      render({ model, el }) {
        const span = document.createElement("span");
        span.className = "mna-smoke-ticker";
        const show = () => { span.textContent = model.get("text"); };
        model.on("change:text", show);
        show();
        el.appendChild(span);
        model.send({ event: "rendered" });
      },
    };
    """
    text = traitlets.Unicode("tick 0").tag(sync=True)


ticker = SmokeTicker()
rendered = asyncio.Event()
ticker.on_msg(lambda _widget, content, _buffers: content.get("event") == "rendered" and rendered.set())


async def tick():
    try:
        await asyncio.wait_for(rendered.wait(), 20)
    except asyncio.TimeoutError:
        pass  # the ticks still run; the test then reports what the page showed
    for i in range(1, 6):
        await asyncio.sleep(0.05)
        ticker.text = f"tick {i}"


ticker_task = asyncio.get_running_loop().create_task(tick())
ticker
'''

AFTER_CELL = 'print("smoke: last cell ran")\n'

TICKS = [f"tick {i}" for i in range(6)]


def test_notebook_runs_and_widget_updates_live(lab: LabPage) -> None:
    lab.open_notebook([PRINT_CELL, WIDGET_CELL, AFTER_CELL], "smoke.ipynb")
    recorder = lab.record_texts(".mna-smoke-ticker")

    lab.run_all()

    # (1) the printed text, and the server's environment reached the kernel
    output = lab.cell_output_text(0)
    assert "smoke: hello from the kernel" in output, output
    assert "MINIAGENTS_NB_LLM = fake" in output, output
    assert "smoke: last cell ran" in lab.cell_output_text(2)

    # (2) the widget showed values before the final one, in order, while the task ran after its cell ended
    seen = recorder.wait_for("tick 5", timeout=30.0)
    recorder.stop()
    samples = recorder.samples()
    assert seen == sorted(seen, key=TICKS.index), f"texts out of order or unexpected: {samples}"
    intermediate = [text for text in seen if text in TICKS[1:5]]
    assert intermediate, f"no intermediate value seen before the final one: {samples}"

    # (3) the final value is exact, and it is the only ticker on the page
    assert lab.texts(".mna-smoke-ticker") == ["tick 5"]
    assert re.fullmatch(r"\[\d+\]:", lab.prompts()[1]), lab.prompts()

    lab.screenshot("jupyterlab-smoke")
    lab.screenshot("jupyterlab-smoke-widget-output", cell=1, output_only=True)
    print(f"ticker texts (text, ms): {samples}")

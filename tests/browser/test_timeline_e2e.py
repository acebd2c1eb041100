"""The timeline in JupyterLab (headless Chromium): `show(reply, timeline=True)` draws one lane per agent call that
grows while the calls run and ends with exact bars, message marks and token ticks; the tree view's button shows the
same timeline, zoom widens it; saved and reopened without the kernel, the static timeline has the same lanes, in
the light and the dark theme."""

from __future__ import annotations

import json
import re

from .harness import LabPage

AGENTS_CELL = """\
import asyncio

from miniagents_nb import InteractionContext, MessageTokenAppender, TextMessage, miniagent, show


async def stream_words(ctx: InteractionContext, text: str) -> None:
    with MessageTokenAppender() as appender:
        ctx.reply(TextMessage.promise(message_token_streamer=appender))
        for word in text.split(" "):
            await asyncio.sleep(0.1)
            appender.append(word + " ")


@miniagent
async def poet(ctx: InteractionContext) -> None:
    await stream_words(ctx, "Roses lean on the fence and the kettle hums while the kettle hums")


@miniagent
async def critic(ctx: InteractionContext) -> None:
    await asyncio.sleep(0.3)  # starts with the poet, answers later
    await stream_words(ctx, "Lovely rhythm")


@miniagent
async def editor(ctx: InteractionContext) -> None:
    ctx.reply("Draft and review:")
    ctx.reply(poet.trigger())
    ctx.reply(critic.trigger())
"""

SLOW_CELL = """\
@miniagent
async def narrator(ctx: InteractionContext) -> None:
    await stream_words(ctx, " ".join(["and then"] * 300))  # half a minute: still running while the test zooms


slow_reply = narrator.trigger()
show(slow_reply, timeline=True, messages=False, tree=False)
"""

CELLS = [
    "%load_ext miniagents_nb",
    AGENTS_CELL,
    "reply = editor.trigger()\nshow(reply, timeline=True, messages=False)",
    "tree_reply = editor.trigger()\nawait tree_reply\nshow(tree_reply, messages=False)",
    SLOW_CELL,
]
TIMELINE = ".jp-Cell:nth-child(3) .mna-timeline"
LANES = f"{TIMELINE} .mna-lane"
POET_BAR = f"{TIMELINE} .mna-lane[data-alias='POET'] .mna-lane-bar"


_JS_SAMPLE_BAR = """(sel) => {
  const seen = [];
  const check = () => {
    const el = document.querySelector(sel);
    if (!el) return;
    const sample = [el.closest(".mna-lane").dataset.status, Math.round(el.getBoundingClientRect().width)];
    const last = seen[seen.length - 1];
    if (!last || last[0] !== sample[0] || last[1] !== sample[1]) seen.push(sample);
  };
  const observer = new MutationObserver(check);
  observer.observe(document.body, {subtree: true, childList: true, attributes: true});
  window.__mnaBar = {seen, observer};
}"""


def _bar_width(lab: LabPage, selector: str) -> float:
    width: float = lab.page.evaluate(
        "(sel) => { const el = document.querySelector(sel); return el ? el.getBoundingClientRect().width : -1; }",
        selector,
    )
    return width


def _check_final_timeline(lab: LabPage) -> None:
    lab.wait_for_js(
        "(sel) => { const s = [...document.querySelectorAll(sel)].map(e => e.dataset.status);"
        " return s.length === 3 && s.every(t => t === 'done'); }",
        LANES,
        timeout=30,
        what="three lanes, all done (statuses: {texts})",
        texts=lambda: lab.page.evaluate(
            "(sel) => [...document.querySelectorAll(sel)].map(e => e.dataset.status)", LANES
        ),
    )
    aliases = lab.page.evaluate("(sel) => [...document.querySelectorAll(sel)].map(e => e.dataset.alias)", LANES)
    assert aliases == ["EDITOR", "POET", "CRITIC"], aliases
    labels = lab.texts(f"{TIMELINE} .mna-lane-alias")
    assert labels == ["EDITOR", "POET", "CRITIC"], labels
    counts = lab.page.evaluate(
        "(sel) => [...document.querySelectorAll(sel)].map(l => [l.querySelectorAll('.mna-lane-mark').length,"
        " l.querySelectorAll('.mna-lane-tick').length])",
        LANES,
    )
    assert [marks for marks, _ in counts] == [1, 1, 1], counts  # each call replied one message of its own
    assert counts[0][1] == 0, counts  # the editor's message came whole: no token ticks
    assert counts[1][1] >= 3, counts  # the poet's words were seen arriving over time
    titles = lab.page.evaluate("(sel) => [...document.querySelectorAll(sel)].map(e => e.title)", LANES)
    assert all(" · ended at " in title for title in titles), titles
    assert "first token after" in titles[1], titles
    # the critic started with the poet, but its bar is shorter and its first token came later
    poet_box, critic_box = (
        lab.page.evaluate(
            "(sel) => { const r = document.querySelector(sel).getBoundingClientRect(); return [r.left, r.width]; }",
            f"{TIMELINE} .mna-lane[data-alias='{alias}'] .mna-lane-bar",
        )
        for alias in ("POET", "CRITIC")
    )
    assert abs(poet_box[0] - critic_box[0]) < 3, (poet_box, critic_box)
    assert critic_box[1] < poet_box[1], (poet_box, critic_box)
    page_text = lab.page.inner_text("body")
    assert "model not found" not in page_text


def test_the_timeline_grows_live_then_survives_the_kernel(lab: LabPage) -> None:
    name = lab.open_notebook(CELLS, "timeline.ipynb")
    # every (status, width) the poet's bar shows, sampled on each DOM change (the live timeline redraws itself)
    lab.page.evaluate(_JS_SAMPLE_BAR, POET_BAR)
    lab.run_all(timeout=90)

    # live: the poet's bar grew with the clock while it ran
    _check_final_timeline(lab)
    samples = lab.page.evaluate("() => { window.__mnaBar.observer.disconnect(); return window.__mnaBar.seen; }")
    running = [width for status, width in samples if status == "running"]
    assert len(running) >= 3, samples
    assert running[-1] > running[0] + 5, samples
    assert samples[-1][0] == "done", samples
    lab.wait_for_selector(
        ".jp-Cell:nth-child(3) .mna-view.mna-static .mna-timeline", timeout=15, what="the static timeline"
    )
    lab.screenshot("timeline-final", cell=2, output_only=True)

    # under a tree, the same timeline is one click away, with no script (the view is a static form by now)
    summary = ".jp-Cell:nth-child(4) .mna-timeline > summary"
    lab.wait_for_selector(summary, timeout=30, what="the tree view's closed timeline")
    assert (
        lab.page.evaluate("(sel) => document.querySelector(sel).open", ".jp-Cell:nth-child(4) .mna-timeline") is False
    )
    lab.click(lab.page.locator(summary), what="the timeline's summary")
    lanes = lab.page.evaluate(
        "(sel) => [...document.querySelectorAll(sel)].filter(e => e.offsetWidth > 0).map(e => e.dataset.alias)",
        ".jp-Cell:nth-child(4) .mna-lane",
    )
    assert lanes == ["EDITOR", "POET", "CRITIC"], lanes
    lab.screenshot("timeline-under-the-tree", cell=3, output_only=True)

    # a live timeline zooms in and out (scrolling sideways), its bar growing meanwhile
    tracks = ".jp-Cell:nth-child(5) .mna-timeline-tracks"
    lab.wait_for_selector(f"{tracks} .mna-lane-bar", timeout=30, what="the narrator's running lane")
    before = _bar_width(lab, tracks)
    lab.click(lab.page.locator(".jp-Cell:nth-child(5) .mna-timeline-button", has_text="+"), what="zoom in")
    lab.wait_for_js(  # the zoom is drawn with the view's next redraw
        "([sel, before]) => document.querySelector(sel)?.getBoundingClientRect().width > 1.9 * before",
        [tracks, before],
        timeout=10,
        what="the zoomed tracks to be twice as wide (widths: {texts})",
        texts=lambda: (before, _bar_width(lab, tracks)),
    )
    lab.screenshot("timeline-zoomed-live", cell=4, output_only=True)
    # the live axis (drawn by timeline.js) is labelled at round, evenly spaced times, as the static one is
    axis = lab.texts(".jp-Cell:nth-child(5) .mna-timeline-axis .mna-axis-label")
    assert len(axis) >= 2, axis
    values = [float(re.fullmatch(r"(\d+(?:\.\d+)?) (?:ms|s|min)", text).group(1)) for text in axis]  # type: ignore[union-attr]
    step = values[1] - values[0]
    assert all(abs((b - a) - step) < 1e-9 for a, b in zip(values, values[1:], strict=False)), axis
    assert re.fullmatch(r"0\.0*(1|2|25|5)|(1|2|2\.5|5)0*(\.0*)?", f"{step:.10g}"), axis
    lab.click(lab.page.locator(".jp-Cell:nth-child(5) .mna-timeline-button", has_text="fit"), what="fit")
    fitted = lab.page.evaluate(
        "(sel) => { const t = document.querySelector(sel); return [t.getBoundingClientRect().width,"
        " t.parentElement.clientWidth]; }",
        tracks,
    )
    assert abs(fitted[0] - fitted[1]) < 2, fitted  # the whole run fits the lane area again
    # the narrator is cancelled (as `%miniagents cancel` in a cell would): its view ends, as a static form
    lab.page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        '.requestExecute({code: \'get_ipython().run_line_magic("miniagents", "cancel")\', silent: true}).done'
    )
    lab.wait_for_selector(
        ".jp-Cell:nth-child(5) .mna-static .mna-lane[data-status='cancelled']",
        timeout=30,
        what="the narrator's lane to read cancelled",
    )

    lab.save_notebook()
    saved = json.loads((lab.server.root_dir / name).read_text())
    html = "".join(
        "".join(output.get("data", {}).get("text/html", "")) for output in saved["cells"][2].get("outputs", [])
    )
    assert re.findall(r'class="mna-lane mna-status-(\w+)" data-alias="(\w+)"', html) == [
        ("done", "EDITOR"),
        ("done", "POET"),
        ("done", "CRITIC"),
    ]

    lab.server.shutdown_kernels()
    lab.page.reload(wait_until="domcontentloaded")
    lab.wait_for_kernel_idle(expected_cells=len(CELLS), timeout=60)
    _check_final_timeline(lab)
    lab.screenshot("timeline-reopened-light", cell=2, output_only=True)
    lab.use_theme("dark")
    _check_final_timeline(lab)
    lab.screenshot("timeline-reopened-dark", cell=2, output_only=True)
    lab.use_theme("light")

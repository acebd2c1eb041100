"""The trace view in JupyterLab (headless Chromium): each call of the agent tree folds (a <details>, deep levels
start closed), a node the user closed stays closed while live updates patch the tree, a final node reads its
inclusive and self time ("1.23 s · self 0.004 s": a delegating agent no longer reads 0.0 s), and its details open
on click; screenshots in the light and the dark theme."""

from __future__ import annotations

import re

from .harness import LabPage

AGENTS_CELL = """\
import asyncio

from miniagents_nb import InteractionContext, MessageTokenAppender, TextMessage, miniagent, show

gates = [asyncio.Event(), asyncio.Event()]


@miniagent
async def worker(ctx: InteractionContext) -> None:
    with MessageTokenAppender() as appender:
        ctx.reply(TextMessage.promise(message_token_streamer=appender))
        appender.append("first ")
        await gates[0].wait()
        appender.append("second ")
        await gates[1].wait()
        for word in "and the rest of the work".split():
            await asyncio.sleep(0.05)
            appender.append(word + " ")


@miniagent
async def team(ctx: InteractionContext) -> None:
    ctx.reply(worker.trigger())


@miniagent
async def lead(ctx: InteractionContext) -> None:
    ctx.reply(team.trigger())


@miniagent
async def boss(ctx: InteractionContext) -> None:
    ctx.reply("Delegated:")
    ctx.reply(lead.trigger())  # hands the work over and returns at once
"""

CELLS = ["%load_ext miniagents_nb", AGENTS_CELL, "reply = boss.trigger()\nshow(reply, tree=True)"]
VIEW = ".jp-Cell:nth-child(3) .mna-view"
LIVE = f"{VIEW}:not(.mna-static)"


def _node(alias: str, view: str = VIEW) -> str:
    return f"{view} .mna-node[data-alias='{alias}']"


def _open(lab: LabPage, selector: str) -> bool:
    opened: bool = lab.page.evaluate(
        "(sel) => document.querySelector(sel).querySelector(':scope > .mna-node-box').open", selector
    )
    return opened


def _release(lab: LabPage, gate: int) -> None:
    lab.page.evaluate(
        "(code) => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        ".requestExecute({code, silent: true}).done",
        f"gates[{gate}].set()",
    )


def _seconds(text: str) -> float:
    value = re.fullmatch(r"([\d.]+) s", text.strip())
    assert value, text
    return float(value.group(1))


def test_the_trace_tree_folds_keeps_choices_and_shows_inclusive_and_self_time(lab: LabPage) -> None:
    lab.open_notebook(CELLS, "trace.ipynb")
    lab.run_all(timeout=60)
    lab.wait_for_selector(_node("WORKER", LIVE), timeout=30, what="the live tree's worker node")
    # the first three levels are open, the fourth (the worker) starts closed
    assert [_open(lab, _node(alias, LIVE)) for alias in ("BOSS", "LEAD", "TEAM", "WORKER")] == [
        True,
        True,
        True,
        False,
    ]
    # click-to-details while live: the view asks the kernel for the call's details when they are opened
    lab.click(
        lab.page.locator(f"{_node('BOSS', LIVE)} > .mna-node-box > .mna-node-details > summary").first,
        what="the live boss's details",
    )
    lab.wait_for_js(
        "(sel) => (document.querySelector(sel)?.innerText ?? '').includes('Replies')",
        f"{_node('BOSS', LIVE)} > .mna-node-box > .mna-node-details",
        timeout=30,
        what="the live boss's details to arrive from the kernel ({texts})",
        texts=lambda: lab.texts(f"{_node('BOSS', LIVE)} > .mna-node-box > .mna-node-details"),
    )
    live_details = lab.texts(f"{_node('BOSS', LIVE)} > .mna-node-box > .mna-node-details")[0]
    assert "Input" in live_details, live_details
    assert "Delegated:" in live_details, live_details  # its own reply
    # the user closes the boss; a mark on its element proves later updates patch it rather than redraw it
    lab.click(lab.page.locator(f"{_node('BOSS', LIVE)} > .mna-node-box > summary"), what="the boss's summary")
    assert not _open(lab, _node("BOSS", LIVE))
    lab.page.evaluate("(sel) => { document.querySelector(sel).__mark = true; }", _node("BOSS", LIVE))
    _release(lab, 0)
    lab.wait_for_js(
        "(sel) => [...document.querySelectorAll(sel)].some(e => e.textContent.includes('second'))",
        f"{_node('WORKER', LIVE)} .mna-node-message",
        timeout=30,
        what="the worker's preview to grow (previews: {texts})",
        texts=lambda: lab.texts(f"{_node('WORKER', LIVE)} .mna-node-message"),
    )
    assert lab.page.evaluate("(sel) => document.querySelector(sel).__mark === true", _node("BOSS", LIVE))
    assert not _open(lab, _node("BOSS", LIVE))  # the user's choice survived the update
    # a message the list shows in full is only referred to in the tree
    assert all(text.startswith("↑ ") for text in lab.texts(f"{_node('WORKER', LIVE)} .mna-node-message"))
    markers = lab.page.evaluate(  # and carries only its own marker, not also the "›" of other tree lines
        "(sel) => [...document.querySelectorAll(sel)].map(e => getComputedStyle(e, '::before').content)",
        f"{_node('WORKER', LIVE)} .mna-node-message",
    )
    assert markers
    assert all(marker in ("none", "normal") for marker in markers), markers
    lab.screenshot("trace-live-light", cell=2, output_only=True)

    _release(lab, 1)
    static = f"{VIEW}.mna-static"
    lab.wait_for_selector(f"{static} .mna-node[data-alias='WORKER'][data-status='done']", timeout=30, what="final")
    times = {
        alias: lab.texts(f"{_node(alias, static)} > .mna-node-box > summary .mna-node-elapsed")[0]
        for alias in ("BOSS", "LEAD", "TEAM", "WORKER")
    }
    split = {alias: [_seconds(part) for part in text.split("· self")] for alias, text in times.items()}
    for total, own in split.values():
        assert own <= total, times
    assert split["BOSS"][0] >= split["WORKER"][0], times  # inclusive: the callees' time is in it
    assert split["BOSS"][1] < split["BOSS"][0], times  # self: the boss only handed the work over
    assert split["WORKER"][0] >= 0.25, times  # five words, 0.05 s apart, after both gates

    # click-to-details: the static form opens a call's details with no kernel round trip
    assert _open(lab, _node("BOSS", static))  # the saved form opens the first levels, with no script
    lab.click(
        lab.page.locator(f"{_node('BOSS', static)} > .mna-node-box > .mna-node-details > summary"),
        what="the boss's details",
    )
    details = lab.page.inner_text(f"{_node('BOSS', static)} > .mna-node-box > .mna-node-details")
    assert "Replies" in details, details
    assert "Delegated:" in details, details
    header = lab.texts(f"{static} .mna-title")[0]
    assert header.startswith("BOSS · 2 messages"), header
    lab.screenshot("trace-final-light", cell=2, output_only=True)

    lab.use_theme("dark")
    lab.screenshot("trace-final-dark", cell=2, output_only=True)
    lab.use_theme("light")
    assert "model not found" not in lab.page.inner_text("body")

"""The notebook layer end to end in JupyterLab (headless Debian Chromium): a multi-agent notebook whose agents
stream tokens slowly; the live views must show partial text before the final text, end with the exact final
text, and show the agent tree with each call's status. Screenshots go to tests/artifacts/browser/."""

from __future__ import annotations

import re

from .harness import LabPage

POEM = "Roses lean on the fence, the kettle hums, and every token takes its time to arrive on the page."
CRITIQUE = "Lovely rhythm; the kettle could hum louder."

AGENTS_CELL = f'''\
import asyncio
import re

from miniagents_nb import InteractionContext, MessageTokenAppender, TextMessage, miniagent

POEM = {POEM!r}
CRITIQUE = {CRITIQUE!r}


async def stream_tokens(ctx: InteractionContext, text: str, delay: float) -> None:
    """A slow token producer: one word at a time, the way an LLM streams."""
    with MessageTokenAppender(capture_errors=True) as appender:
        ctx.reply(TextMessage.promise(message_token_streamer=appender))
        for token in re.findall(r"\\S+\\s*", text):
            await asyncio.sleep(delay)
            appender.append(token)


@miniagent
async def poet(ctx: InteractionContext) -> None:
    await stream_tokens(ctx, POEM, 0.08)


@miniagent
async def critic(ctx: InteractionContext) -> None:
    await stream_tokens(ctx, CRITIQUE, 0.08)


@miniagent
async def editor(ctx: InteractionContext) -> None:
    ctx.reply("Draft and review:")
    ctx.reply(poet.trigger())
    ctx.reply(critic.trigger())
'''

CELLS = [
    "%load_ext miniagents_nb",
    AGENTS_CELL,
    "reply = editor.trigger()\nreply",  # the cell returns at once; the view goes on updating
    "%%chat critic\nWhat do you think?",  # the cell stays busy while the reply streams
    'print("after the chat")',
]

FIRST_VIEW = ".mna-view[data-kind='sequence']"
POET_TEXT = f"{FIRST_VIEW} .mna-message[data-index='1'] .mna-message-text"
POET_STATUS = f"{FIRST_VIEW} .mna-node[data-alias='POET'] > .mna-node-box > .mna-node-line .mna-node-status"


def test_live_views_stream_and_show_the_agent_tree(lab: LabPage) -> None:
    lab.open_notebook(CELLS, "notebook_layer.ipynb")
    poet_text = lab.record_texts(POET_TEXT)
    poet_status = lab.record_texts(POET_STATUS)

    lab.run_all(timeout=90)
    lab.wait_for_text(f"{FIRST_VIEW} .mna-view-status", re.compile(r"^done$"), timeout=30)

    # live: the poet's message grew word by word before it showed the whole poem, and ended exactly on it
    seen = poet_text.wait_for(POEM, timeout=30)
    poet_text.stop()
    partial = [text for text in seen if text and text != POEM]
    assert partial, f"no partial text was shown before the final text: {poet_text.samples()}"
    assert all(POEM.startswith(text) for text in partial), poet_text.samples()
    assert len(seen) >= 3, poet_text.samples()

    # the tree: who called whom, each call's final status; the poet was seen running before done
    statuses = poet_status.stop()
    assert "running" in statuses, poet_status.samples()
    assert statuses[-1] == "done", poet_status.samples()
    aliases = lab.texts(f"{FIRST_VIEW} .mna-node-alias")
    assert aliases[:3] == ["EDITOR", "POET", "CRITIC"], aliases
    nested = lab.texts(
        f"{FIRST_VIEW} .mna-node[data-alias='EDITOR'] .mna-node[data-alias] > .mna-node-box > .mna-node-line .mna-node-alias"
    )
    assert nested == ["POET", "CRITIC"], nested
    node_statuses = lab.texts(f"{FIRST_VIEW} .mna-node-status")
    assert node_statuses[:3] == ["done", "done", "done"], node_statuses
    messages = lab.texts(f"{FIRST_VIEW} .mna-message-text")
    assert messages[:3] == ["Draft and review:", POEM, CRITIQUE], messages
    senders = lab.texts(f"{FIRST_VIEW} .mna-sender")
    assert senders[:3] == ["EDITOR", "POET", "CRITIC"], senders

    # the %%chat cell: its exchange as a chat (the user's turn, then the reply, final text exact); the cell after it ran
    chat = list(zip(lab.texts(".mna-chat .mna-chat-sender"), lab.texts(".mna-chat .mna-chat-text"), strict=True))
    assert chat == [("USER", "What do you think?"), ("CRITIC", CRITIQUE)], chat
    assert "after the chat" in lab.cell_output_text(4)
    assert all(re.fullmatch(r"\[\d+\]:", prompt) for prompt in lab.prompts()), lab.prompts()

    lab.screenshot("notebook-layer-e2e")
    lab.screenshot("notebook-layer-e2e-views", cell=2)
    lab.screenshot("notebook-layer-e2e-chat", cell=3)
    assert not [line for line in lab.console if "mna" in line.lower() or "anywidget" in line.lower()], lab.console

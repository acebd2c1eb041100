"""A console chat for the terminal tests: `dialog_loop` with the console user agent and a scripted assistant.

Run as `python console_chat_script.py CONTROL_FD` under a pseudo-terminal (or with stdin closed). The assistant
streams "Hel", waits for one byte on the CONTROL_FD pipe (so the test sees the first token on screen before the
second one exists), then streams "lo, <what the user said>!". With CONTROL_FD "-" it does not wait.
The chat history goes to CHAT.md in the working directory. "DIALOG OVER" is printed when `dialog_loop` returns.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from miniagents_nb import InteractionContext, MiniAgents, miniagent
from miniagents_nb.ext import dialog_loop, markdown_history_agent
from miniagents_nb.ext.llm import SystemMessage
from miniagents_nb.ext.llms.messages import AssistantMessage

CONTROL = sys.argv[1] if len(sys.argv) > 1 else "-"


@miniagent
async def fake_agent(ctx: InteractionContext) -> None:
    messages = await ctx.message_promises
    last_user_text = next(str(message) for message in reversed(messages) if message.get("role") == "user")

    async def tokens(_aux: dict[str, Any]) -> AsyncIterator[str]:
        yield "Hel"
        if CONTROL != "-":
            await asyncio.to_thread(os.read, int(CONTROL), 1)
        yield f"lo, {last_user_text}!"

    ctx.reply(AssistantMessage.promise(message_token_streamer=tokens, agent_alias=ctx.this_agent.alias))


async def main() -> None:
    await dialog_loop.fork(assistant_agent=fake_agent, history_agent=markdown_history_agent).trigger(
        SystemMessage(content="Be brief.")
    )
    print("DIALOG OVER", flush=True)


if __name__ == "__main__":
    MiniAgents().run(main())

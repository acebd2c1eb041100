"""The view of a `%%chat` exchange (`jupyter/_chat_cell.py`): the user's turn, then the reply as it streams; it is
done when the last message ended, not when the reply sequence has all its messages."""

from __future__ import annotations

import asyncio

from miniagents_nb import MiniAgents
from miniagents_nb.jupyter._chat_cell import chat_cell_views
from miniagents_nb.jupyter._tracker import CallTracker

from .helpers import RecordingComm, comm_of
from .test_saved_form import gated_writer


async def test_an_exchange_runs_while_its_last_message_streams_then_is_done(comms: list[RecordingComm]) -> None:
    first, release = asyncio.Event(), asyncio.Event()
    writer = gated_writer(first, release)
    async with MiniAgents() as mini_agents:
        tracker = CallTracker(mini_agents)  # what the notebook session has: it names the senders
        mini_agents.subscribe(tracker)
        reply = writer.trigger("Tell me a story.")
        (view,) = chat_cell_views(
            "WRITER", "Tell me a story.", reply, tree=False, tracker=tracker, max_updates_per_second=1000
        )
        recording = comm_of(comms, view)
        try:
            await first.wait()
            await recording.wait_until(
                lambda: "Once upon a time" in view.text(), what="the story's beginning in the transcript"
            )
            assert view.text().startswith("Chat with WRITER (running)\n\nUSER: Tell me a story.\n\nWRITER: Once")
            assert not view.is_final
        finally:
            release.set()
        await view.wait()
    assert view.text() == "Chat with WRITER (done)\n\nUSER: Tell me a story.\n\nWRITER: Once upon a time, the end."
    statuses = [delta["status"] for delta in recording.custom_messages() if "status" in delta]
    assert statuses[0] == "running"
    assert view.state["status"] == "done"

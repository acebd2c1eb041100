"""What a live view costs: comm messages and wall time for 100,000 streamed tokens, with and without a view.

Run from the repository root (not collected by pytest; it asserts nothing about time):

    .venv/bin/python -m tests.jupyter.measure_view_cost

Each workload runs in a real ipykernel (the interpreter running this script); messages are counted on the client
side of IOPub, the way JupyterLab's server counts them for its rate limit (1000 messages/s).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from .kernel_harness import Kernel

TOKENS = 100_000

SETUP = f"""\
import asyncio, time
from miniagents_nb import MessageTokenAppender, TextMessage, miniagent
from miniagents_nb.jupyter import view

TOKENS = {TOKENS}

@miniagent
async def streamer(ctx, pause_every: int = 100, pause: float = 0.0):
    with MessageTokenAppender(capture_errors=True) as appender:
        ctx.reply(TextMessage.promise(message_token_streamer=appender))
        for index in range(TOKENS):
            appender.append("tok ")
            if index % pause_every == 0:
                await asyncio.sleep(pause)
"""

NO_VIEW = """\
start = time.perf_counter()
messages = await streamer.trigger({args})
print(json.dumps({{"seconds": time.perf_counter() - start, "chars": len(str(messages[0]))}}))
"""

WITH_VIEW = """\
start = time.perf_counter()
reply = streamer.trigger({args})
v = view(reply, tree={tree})
display(v)
messages = await reply
await v.wait()
print(json.dumps({{"seconds": time.perf_counter() - start, "chars": len(str(messages[0])),
                  "view_chars": len(v.state["messages"][0]["text"]), "updates_sent": v.updates_sent}}))
"""


def _measure(kernel: Kernel, code: str) -> dict[str, Any]:
    run = kernel.ok("import json\n" + code, timeout=120)
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    result["comm_msgs"] = len(run.of_type("comm_msg"))
    result["iopub_msgs"] = len([m for m in run.messages if m["msg_type"] not in {"status", "execute_input"}])
    if result["seconds"] > 0:
        result["comm_msgs_per_second"] = round(result["comm_msgs"] / result["seconds"], 1)
    return result


def main() -> None:
    workloads = {
        "fast (sleep(0) every 100 tokens)": "",
        "paced (5 ms pause every 100 tokens, ~5 s)": "pause=0.005",
    }
    report: dict[str, Any] = {"python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        kernel = Kernel(Path(tmp) / "kernel.log")
        try:
            kernel.ok("%load_ext miniagents_nb")
            kernel.ok(SETUP)
            kernel.ok("import ipykernel, IPython\nprint(ipykernel.__version__, IPython.__version__)")
            for name, args in workloads.items():
                rows: dict[str, list[dict[str, Any]]] = {"no view": [], "sequence view": [], "sequence + tree": []}
                for _ in range(3):
                    rows["no view"].append(_measure(kernel, NO_VIEW.format(args=args)))
                    rows["sequence view"].append(_measure(kernel, WITH_VIEW.format(args=args, tree=False)))
                    rows["sequence + tree"].append(_measure(kernel, WITH_VIEW.format(args=args, tree=True)))
                report[name] = {
                    label: {
                        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 3),
                        "comm_msgs": [r["comm_msgs"] for r in runs],
                        "iopub_msgs": [r["iopub_msgs"] for r in runs],
                        "comm_msgs_per_second": [r.get("comm_msgs_per_second") for r in runs],
                        "text_exact": all(r.get("view_chars", r["chars"]) == r["chars"] == 4 * TOKENS for r in runs),
                    }
                    for label, runs in rows.items()
                }
            versions = kernel.ok("print(ipykernel.__version__, IPython.__version__)").stdout.split()
            report["ipykernel"], report["ipython"] = versions
        finally:
            kernel.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

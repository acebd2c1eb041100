#!/usr/bin/env python3
"""Ray rows of the benchmarks (issue 15): what `miniagents_nb.ext.ray.ray_agent` buys and costs; writes
bench/results-ray.md.

    .venv/bin/python bench/ray_scaling.py            # about a minute on 2 cores
    .venv/bin/python bench/ray_scaling.py --quick    # smaller sizes

Rows: a fan-out of 8 CPU-bound agent calls (about 0.5 s of pure-Python work each) run in-process (one event loop:
they run one after the other, holding the GIL) against `ray_agent(..., num_cpus=1)` on a local Ray with 2 CPUs
(goal: at least 1.7x faster); the per-call overhead of a remote call of a trivial agent against a local one; and
the per-token overhead of streaming one message's tokens back from a worker. Ray's start-up and the actors' first
start are measured apart (once per session) and left out of the other rows. Unlike `bench/run.py` this needs the
`ray` extra (`pip install -e ".[ray]"`), and it runs in this process, not in fresh subprocesses.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))


def say(text: str) -> None:
    print(text, flush=True)


async def _timed(coro_factory, rounds: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await coro_factory()
        times.append(time.perf_counter() - started)
    return times


async def measure(quick: bool) -> dict[str, float]:
    import ray
    from ray_agents import burn, cpu_agent, echo_agent, token_agent

    from miniagents_nb import MiniAgents
    from miniagents_nb.ext.ray import ray_agent

    # calibrate `burn` to about 0.5 s here
    n = 1_000_000
    started = time.perf_counter()
    burn(n)
    n = int(n * 0.5 / (time.perf_counter() - started))
    fan = 4 if quick else 8
    calls = 50 if quick else 200
    tokens = 5_000 if quick else 20_000
    rounds = 1 if quick else 3
    results: dict[str, float] = {"burn_n": n, "fan": fan, "calls": calls, "tokens": tokens}

    started = time.perf_counter()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")])}},
    )
    results["ray_init_s"] = time.perf_counter() - started
    remote_cpu = ray_agent(cpu_agent, num_cpus=1)
    remote_echo = ray_agent(echo_agent, num_cpus=0, pool_size=1)  # the two CPUs go to the fan-out
    remote_tokens = ray_agent(token_agent, num_cpus=0, pool_size=1)
    try:
        async with MiniAgents():
            started = time.perf_counter()
            await asyncio.gather(*(remote_cpu.trigger(n=1) for _ in range(2)))  # both actors started
            await remote_echo.trigger()
            await remote_tokens.trigger(tokens=1)
            results["actors_start_s"] = time.perf_counter() - started

            async def fan_out(agent):  # type: ignore[no-untyped-def]
                replies = await asyncio.gather(*(agent.trigger(n=n) for _ in range(fan)))
                assert all(str(reply[0]) == str(replies[0][0]) for reply in replies)

            results["fan_local_s"] = min(await _timed(lambda: fan_out(cpu_agent), rounds))
            results["fan_ray_s"] = min(await _timed(lambda: fan_out(remote_cpu), rounds))

            async def sequential(agent):  # type: ignore[no-untyped-def]
                for _ in range(calls):
                    assert str((await agent.trigger())[0]) == "ok"

            results["call_local_us"] = min(await _timed(lambda: sequential(echo_agent), rounds)) / calls * 1e6
            results["call_ray_us"] = min(await _timed(lambda: sequential(remote_echo), rounds)) / calls * 1e6

            async def stream(agent):  # type: ignore[no-untyped-def]
                count = 0
                async for promise in agent.trigger(tokens=tokens):
                    async for _ in promise:
                        count += 1
                assert count == tokens

            results["token_local_us"] = min(await _timed(lambda: stream(token_agent), rounds)) / tokens * 1e6
            results["token_ray_us"] = min(await _timed(lambda: stream(remote_tokens), rounds)) / tokens * 1e6
    finally:
        ray.shutdown()
    return results


def markdown(results: dict[str, float], command: str, seconds: float) -> str:
    speedup = results["fan_local_s"] / results["fan_ray_s"]
    fan = int(results["fan"])
    rows = [
        "| Row | in-process | `ray_agent` (2 CPUs) | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| fan-out of {fan} CPU-bound calls (~0.5 s each) | {results['fan_local_s']:.2f} s | "
        f"{results['fan_ray_s']:.2f} s | {speedup:.2f}x faster (goal >= 1.7x) |",
        f"| one call of a trivial agent ({int(results['calls'])} in a row) | {results['call_local_us']:.0f} µs | "
        f"{results['call_ray_us']:.0f} µs | +{results['call_ray_us'] - results['call_local_us']:.0f} µs per call |",
        f"| one token streamed back ({int(results['tokens']):,} in one message) | {results['token_local_us']:.2f} µs | "
        f"{results['token_ray_us']:.2f} µs | +{results['token_ray_us'] - results['token_local_us']:.2f} µs per token |",
    ]
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return "\n".join(
        [
            "# Ray rows (issue 15)",
            "",
            f"`{command}` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} "
            f"CPUs, load average after the run {load}, {seconds:.0f} s in all. Best of the rounds.",
            "",
            *rows,
            "",
            f"Not in the rows: `ray.init` took {results['ray_init_s']:.1f} s and the first start of the four actors "
            f"{results['actors_start_s']:.1f} s (once per session). `burn(n)` with n = {int(results['burn_n']):,}.",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one round")
    parser.add_argument("--output", type=Path, default=BENCH / "results-ray.md")
    args = parser.parse_args()
    started = time.perf_counter()
    results = asyncio.run(measure(args.quick))
    text = markdown(results, " ".join(["python", "bench/ray_scaling.py", *sys.argv[1:]]), time.perf_counter() - started)
    args.output.write_text(text)
    say(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

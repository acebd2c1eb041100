#!/usr/bin/env python3
"""Profile one workload of this package (or of upstream) to see what to optimise.

    python3 bench/profile.py fan_out K=10000
    python3 bench/profile.py token_stream D=20 passthrough=restream --top 40
    python3 bench/profile.py parallel_latency K=10000 --gc-off --save /tmp/par.pstats
    python3 bench/profile.py trigger_round_trip --impl upstream --pyinstrument

Runs the workload twice in this process: once plainly (the honest wall time and GC figures: seconds in the cyclic GC,
passes per generation), then under cProfile, and prints the top functions by cumulative and by own time, and own time
grouped by file. With `--pyinstrument` (only if it is installed) a third run is sampled by pyinstrument.
`--gc-off` disables the cyclic GC for the profiled run so GC pauses are not charged to whichever function allocated.
cProfile inflates small calls 2-5x: read shares, not absolute times. Parameters are `key=value` (JSON values) or
`--params '{"K": 10000}'`; the defaults are in bench/workloads.py (WORKLOADS).

It re-runs itself with the right interpreter (.venv for nb and baseline, bench/.venv-upstream for upstream; create
that one with `python3 bench/run.py` first).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENVS = {"nb": ROOT / ".venv", "baseline": ROOT / ".venv", "upstream": BENCH / ".venv-upstream"}


def stdlib_profilers() -> tuple[ModuleType, ModuleType]:
    """cProfile and pstats: cProfile imports the stdlib `profile`, which this very file would shadow."""
    saved = list(sys.path)
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH]
    try:
        sys.modules.pop("profile", None)
        return importlib.import_module("cProfile"), importlib.import_module("pstats")
    finally:
        sys.path[:] = saved


def reexec_if_needed(impl: str) -> None:
    venv = VENVS[impl]
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    python = venv / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} does not exist: run `python3 bench/run.py --quick` once to create it")
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


def parse_params(pairs: list[str], params_json: str) -> dict[str, Any]:
    params: dict[str, Any] = json.loads(params_json)
    for pair in pairs:
        key, separator, raw = pair.partition("=")
        if not separator:
            raise SystemExit(f"parameters are key=value, got {pair!r}")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def short_location(filename: str, line: int, function: str) -> str:
    if filename == "~":
        return function  # a built-in
    path = filename.replace("\\", "/")
    for marker in ("/miniagents_nb/", "/miniagents/", "/site-packages/", "/bench/"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            prefix = "" if marker == "/site-packages/" else marker.strip("/") + "/"
            return f"{prefix}{tail}:{line}({function})"
    parts = path.split("/")
    if "lib" in parts:  # the standard library: keep what follows lib/pythonX.Y/
        index = len(parts) - 1 - parts[::-1].index("lib")
        return f"{'/'.join(parts[index + 2 :])}:{line}({function})"
    return f"{Path(path).name}:{line}({function})"


def file_group(filename: str, function: str) -> str:
    if filename == "~":
        return "built-in: " + function.split(" of ")[0].replace("<built-in method ", "").rstrip(">")
    location = short_location(filename, 0, "")
    return location.split(":", 1)[0]


def print_tables(stats: Any, top: int, total: float) -> None:
    rows = [
        (short_location(*func), calls, own, cumulative, func)
        for func, (_, calls, own, cumulative, _) in stats.stats.items()
    ]
    for title, index in (("cumulative", 3), ("own (total) time", 2)):
        print(f"\nTop {top} by {title}:")
        print(f"{'#':>3} {'calls':>10} {'own s':>8} {'cum s':>8} {'own %':>6}  function")
        for rank, row in enumerate(sorted(rows, key=lambda r: r[index], reverse=True)[:top], 1):
            share = 100 * row[2] / total if total else 0.0
            print(f"{rank:>3} {row[1]:>10,} {row[2]:>8.3f} {row[3]:>8.3f} {share:>5.1f}%  {row[0]}")
    groups: dict[str, float] = {}
    for func, (_, _, own, _, _) in stats.stats.items():
        name = file_group(func[0], func[2])
        groups[name] = groups.get(name, 0.0) + own
    print(f"\nOwn time by file (top {top}):")
    for name, own in sorted(groups.items(), key=lambda item: item[1], reverse=True)[:top]:
        print(f"  {100 * own / total if total else 0:5.1f}%  {own:8.3f} s  {name}")


def gc_line(monitor: Any, wall: float) -> str:
    share = monitor.seconds / wall if wall else 0.0
    g0, g1, g2 = monitor.collections
    return f"GC {monitor.seconds:.3f} s ({share:.0%} of wall), passes gen0/gen1/gen2 = {g0}/{g1}/{g2}"


def main() -> int:
    parser = argparse.ArgumentParser(description="Profile one benchmark workload (see bench/workloads.py).")
    parser.add_argument("workload")
    parser.add_argument("param", nargs="*", help="key=value overrides of the workload's defaults")
    parser.add_argument("--impl", choices=sorted(VENVS), default="nb")
    parser.add_argument("--params", default="{}", help="JSON object of parameters (key=value pairs win)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--gc-off", action="store_true", help="disable the cyclic GC in the profiled run")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain (unprofiled) run")
    parser.add_argument("--pyinstrument", action="store_true", help="also sample a run with pyinstrument")
    parser.add_argument("--save", help="write the cProfile stats to this .pstats file")
    args = parser.parse_args()
    reexec_if_needed(args.impl)

    cprofile, pstats = stdlib_profilers()
    sys.path.insert(0, str(BENCH))
    workloads = importlib.import_module("workloads")
    if args.workload not in workloads.WORKLOADS:
        raise SystemExit(f"unknown workload {args.workload!r}; one of {', '.join(sorted(workloads.WORKLOADS))}")
    params = workloads.full_params(args.workload, parse_params(args.param, args.params))
    if args.impl in workloads.IMPL_MODULES:  # imported now, so the import is not profiled
        importlib.import_module(workloads.IMPL_MODULES[args.impl])
    print(f"{args.impl} {args.workload} {json.dumps(params)}  (python {sys.version.split()[0]}, {sys.prefix})")

    def run(label: str, gc_enabled: bool = True) -> Any:
        meter = workloads.Meter()
        if not gc_enabled:
            gc.disable()
        try:
            outcome = asyncio.run(workloads.make_coroutine(args.impl, args.workload, params, meter))
        finally:
            gc.enable()
        if outcome.na is not None:
            raise SystemExit(f"n/a: {outcome.na}")
        state = "ok" if outcome.ok else f"WRONG RESULT: {outcome.detail}"
        print(f"{label}: wall {meter.wall_s:.4f} s, {outcome.ops / meter.wall_s:,.0f} {outcome.unit}/s, {state}")
        print(f"{' ' * len(label)}  {gc_line(meter.gc, meter.wall_s)}")
        return meter

    if not args.no_plain:
        run("plain run")
    profiler = cprofile.Profile()
    started = time.perf_counter()
    profiler.enable()
    run("cProfile run" + (" (GC off)" if args.gc_off else ""), gc_enabled=not args.gc_off)
    profiler.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    if args.save:
        stats.dump_stats(args.save)
        print(f"saved {args.save}")
    print_tables(stats, args.top, total)
    print("\n(own time of profile.py(run) is mostly freeing the workload's objects after it returns, outside its span)")

    if args.pyinstrument:
        try:
            pyinstrument = importlib.import_module("pyinstrument")
        except ImportError:
            print("\npyinstrument is not installed (pip install pyinstrument): skipped")
        else:
            sampler = pyinstrument.Profiler(async_mode="disabled")
            sampler.start()
            run("pyinstrument run")
            sampler.stop()
            print(sampler.output_text(unicode=True, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

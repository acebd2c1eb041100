#!/usr/bin/env python3
"""Benchmark miniagents_nb against upstream MiniAgents 0.0.35 and raw asyncio; write bench/results.md.

    python3 bench/run.py                 # full run: 3 interleaved rounds (about 5-6 minutes on 2 cores)
    python3 bench/run.py --quick         # smoke mode: small sizes, 1 round (about a minute)
    python3 bench/run.py --rounds 5 --only fan_out --impls nb,baseline

Every measurement runs in a fresh subprocess (`bench/workloads.py`): this package with the repository's `.venv`,
upstream with `bench/.venv-upstream` (created here with `miniagents==0.0.35` from PyPI when missing), the raw-asyncio
baselines with the repository's `.venv` Python. Rounds are interleaved (round 1: nb, upstream, baseline of every
workload; then round 2; ...) and the tables show medians. Exit status: 0 when every result was verified correct
(targets that are missed are only reported), 1 when a workload returned a wrong result or crashed.

This script needs only the standard library, so any Python 3.10+ can start it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NB_VENV = ROOT / ".venv"
UPSTREAM_VENV = BENCH / ".venv-upstream"
UPSTREAM_REQUIREMENT = "miniagents==0.0.35"
UPSTREAM_VERSION = "0.0.35"
WORKLOADS_SCRIPT = BENCH / "workloads.py"
IMPLS = ("nb", "upstream", "baseline")
KB = 1024  # memory per call is reported in KiB ("KB" in the tables)
TOOL_CALLS = 10  # tool calls in one turn of the tool loop rows (against one: the marginal cost of a tool call)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def say(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------------------------------------------------
# environments
# --------------------------------------------------------------------------------------------------------------------


def _works(python: Path, code: str) -> bool:
    if not python.exists():
        return False
    return subprocess.run([str(python), "-c", code], capture_output=True).returncode == 0


def ensure_environments(need_upstream: bool) -> None:
    """Create the repository's `.venv` and `bench/.venv-upstream` when they are missing or broken."""
    nb_python = venv_python(NB_VENV)
    if not nb_python.exists():
        say(f"creating {NB_VENV} ...")
        subprocess.run([sys.executable, "-m", "venv", str(NB_VENV)], check=True)
    if not _works(nb_python, "import miniagents_nb"):
        say("installing miniagents_nb into .venv (editable) ...")
        subprocess.run([str(nb_python), "-m", "pip", "install", "-q", "-e", str(ROOT)], check=True)
    if not need_upstream:
        return
    upstream_python = venv_python(UPSTREAM_VENV)
    check = f"import importlib.metadata as m, miniagents; assert m.version('miniagents') == {UPSTREAM_VERSION!r}"
    if _works(upstream_python, check):
        return
    # the same base interpreter as .venv, so both implementations run on the same CPython
    base = subprocess.run(
        [str(nb_python), "-c", "import sys; print(getattr(sys, '_base_executable', sys.executable))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    say(f"creating {UPSTREAM_VENV} with {UPSTREAM_REQUIREMENT} ...")
    subprocess.run([base, "-m", "venv", "--clear", str(UPSTREAM_VENV)], check=True)
    subprocess.run([str(upstream_python), "-m", "pip", "install", "-q", UPSTREAM_REQUIREMENT], check=True)
    if not _works(upstream_python, check):
        raise SystemExit(f"could not install {UPSTREAM_REQUIREMENT} into {UPSTREAM_VENV}")


def python_for(impl: str) -> Path:
    return venv_python(UPSTREAM_VENV if impl == "upstream" else NB_VENV)


@dataclass(frozen=True)
class Snapshot:
    """Copies taken at the start: the workload script always, the package unless `--no-snapshot`.

    Every run executes the copied script and nb runs import the copied package (PYTHONPATH comes before the
    editable install's path), so edits to the tree while the benchmark runs (or a `git stash -u` that removes
    bench/ for a moment) cannot mix two revisions into one report.
    """

    script: Path
    package_dir: Path | None


def take_snapshot(into: Path, copy_package: bool) -> Snapshot:
    (into / "bench").mkdir()
    script = Path(shutil.copy2(WORKLOADS_SCRIPT, into / "bench" / WORKLOADS_SCRIPT.name))
    if not copy_package:
        return Snapshot(script, None)
    shutil.copytree(
        ROOT / "miniagents_nb", into / "pkg" / "miniagents_nb", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return Snapshot(script, into / "pkg")


def subprocess_env(impl: str, snapshot: Snapshot) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if impl == "nb" and snapshot.package_dir is not None:
        env["PYTHONPATH"] = str(snapshot.package_dir)
    return env


# --------------------------------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One framework configuration, run for `impls`, compared with the baseline configurations `baselines`."""

    key: str
    workload: str
    params: dict[str, Any]
    label: str
    impls: tuple[str, ...] = ("nb", "upstream")
    baselines: tuple[str, ...] = ()


@dataclass(frozen=True)
class BaselineCase:
    key: str
    workload: str
    params: dict[str, Any]
    label: str


@dataclass
class Plan:
    cases: list[Case]
    baselines: dict[str, BaselineCase]
    sizes: dict[str, Any]  # the sizes the targets refer to


def build_plan(quick: bool) -> Plan:
    n = 10_000 if quick else 100_000
    depths = (1, 5) if quick else (1, 5, 20)
    fan_ks = (100, 1000) if quick else (1000, 10_000)
    par_ks = (100, 1000) if quick else (1000, 10_000)
    level = 50 if quick else 200
    iterations = 300 if quick else 3000
    cases: list[Case] = []
    baselines: dict[str, BaselineCase] = {}

    def baseline(key: str, workload: str, params: dict[str, Any], label: str) -> str:
        baselines.setdefault(key, BaselineCase(key, workload, params, label))
        return key

    for producer in ("gen", "appender"):
        for passthrough in ("promise", "restream"):
            for depth in depths:
                hop_depth = 1 if passthrough == "promise" else depth  # forwarding a promise is one hop whatever D is
                refs = tuple(
                    baseline(
                        f"tokens {variant} D={hop_depth}",
                        "token_stream",
                        {"N": n, "D": hop_depth, "variant": variant},
                        f"{variant} D={hop_depth}",
                    )
                    for variant in ("queue", "agen")
                )
                cases.append(
                    Case(
                        f"token_stream {producer} {passthrough} D={depth}",
                        "token_stream",
                        {"N": n, "D": depth, "producer": producer, "passthrough": passthrough},
                        f"N={n:,}, {producer}, {passthrough}, D={depth}",
                        baselines=refs,
                    )
                )
    for k in fan_ks:
        ref = baseline(f"gather fan_out K={k}", "fan_out", {"K": k, "M": 3}, "gather")
        cases.append(Case(f"fan_out K={k}", "fan_out", {"K": k, "M": 3}, f"K={k:,}, M=3", baselines=(ref,)))
    # linear scaling (issue 16): ten times the big fan-out, nb and gather only (upstream would take minutes)
    xl_k = fan_ks[1] * 10
    ref = baseline(f"gather fan_out K={xl_k}", "fan_out", {"K": xl_k, "M": 3}, "gather")
    cases.append(
        Case(f"fan_out K={xl_k}", "fan_out", {"K": xl_k, "M": 3}, f"K={xl_k:,}, M=3", impls=("nb",), baselines=(ref,))
    )
    # the same big fan-out with the garbage collector left as it is (`tune_gc=False`), to show what the tuning does
    cases.append(
        Case(
            f"fan_out K={fan_ks[1]} gc untuned",
            "fan_out",
            {"K": fan_ks[1], "M": 3, "tune_gc": False},
            f"K={fan_ks[1]:,}, M=3, tune_gc=False",
            impls=("nb",),
        )
    )
    # recording to a run store (issue 13): the same workloads with `record_to=` a fresh store, nb only
    big_k = fan_ks[1]
    cases.append(
        Case(
            f"fan_out K={big_k} record",
            "fan_out",
            {"K": big_k, "M": 3, "record": True},
            f"K={big_k:,}, M=3, recording",
            impls=("nb",),
        )
    )
    for producer in ("gen", "appender"):
        cases.append(
            Case(
                f"token_stream {producer} promise D=1 record",
                "token_stream",
                {"N": n, "D": 1, "producer": producer, "passthrough": "promise", "record": True},
                f"N={n:,}, {producer}, promise, D=1, recording",
                impls=("nb",),
            )
        )
    ref = baseline(f"nesting list L={level}", "deep_nesting", {"L": level, "shape": "list"}, "async-gen flatten")
    cases.append(
        Case(
            f"nesting list L={level}",
            "deep_nesting",
            {"L": level, "shape": "list"},
            f"list, L={level}",
            baselines=(ref,),
        )
    )
    ref = baseline(f"nesting agents L={level}", "deep_nesting", {"L": level, "M": 10, "shape": "agents"}, "queue chain")
    cases.append(
        Case(
            f"nesting agents L={level}",
            "deep_nesting",
            {"L": level, "M": 10, "shape": "agents"},
            f"chain of agents, L={level}, M=10",
            baselines=(ref,),
        )
    )
    for k, mode in ((par_ks[0], "aggregator"), (par_ks[0], "outer"), (par_ks[1], "aggregator")):
        ref = baseline(f"gather sleep K={k}", "parallel_latency", {"K": k, "S": 0.1}, "gather")
        cases.append(
            Case(
                f"parallel_latency K={k} {mode}",
                "parallel_latency",
                {"K": k, "S": 0.1, "mode": mode},
                f"K={k:,}, S=0.1 s, {mode}",
                baselines=(ref,),
            )
        )
    ref = baseline("task round trip", "trigger_round_trip", {"I": iterations}, "create_task + await")
    cases.append(
        Case(
            "trigger_round_trip",
            "trigger_round_trip",
            {"I": iterations},
            f"echo agent, I={iterations:,}",
            baselines=(ref,),
        )
    )
    for mode, calls in (("loop", 1), ("loop", TOOL_CALLS), ("direct", TOOL_CALLS)):
        cases.append(
            Case(
                f"tool_loop {mode} N={calls}",
                "tool_loop",
                {"I": iterations, "mode": mode, "N": calls},
                f"tool loop, one turn of N={calls} no-op tool calls, I={iterations:,}"
                if mode == "loop"
                else f"direct calls of a no-op agent, N={calls} at once, I={iterations:,}",
                impls=("nb",),
            )
        )
    for view, paced, trace in (
        (False, False, False),
        (True, False, False),
        (True, True, False),
        (True, False, True),
        (True, True, True),
    ):
        name = ("trace + timeline" if trace else "view" if view else "no view") + (", paced" if paced else "")
        cases.append(
            Case(
                f"notebook_view {name}",
                "notebook_view",
                {"N": n, "view": view, "paced": paced, "trace": trace},
                f"N={n:,}, {name}",
                impls=("nb",),
            )
        )
    sizes = {
        "N": n,
        "D_max": depths[-1],
        "fan_small": fan_ks[0],
        "fan_big": fan_ks[1],
        "fan_xl": fan_ks[1] * 10,
        "par_big": par_ks[1],
        "L": level,
        "I": iterations,
    }
    return Plan(cases, baselines, sizes)


# --------------------------------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Results:
    """Every record, by (impl, case key); `memory` holds the tracemalloc runs."""

    runs: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    memory: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def add(self, impl: str, key: str, record: dict[str, Any]) -> None:
        self.runs.setdefault((impl, key), []).append(record)
        if not record.get("ok") and record.get("na") is None:
            self.failures.append(record)

    def good(self, impl: str, key: str) -> list[dict[str, Any]]:
        return [r for r in self.runs.get((impl, key), []) if r.get("ok") and r.get("na") is None]

    def na(self, impl: str, key: str) -> str | None:
        for record in self.runs.get((impl, key), []):
            if record.get("na") is not None:
                return str(record["na"])
        return None

    def median(self, impl: str, key: str, name: str) -> float | None:
        values = [r[name] if name in r else r.get("extra", {}).get(name) for r in self.good(impl, key)]
        values = [value for value in values if value is not None]
        return statistics.median(values) if values else None

    def spread(self, impl: str, key: str) -> tuple[float, float] | None:
        values = [r["wall_s"] for r in self.good(impl, key)]
        return (min(values), max(values)) if values else None

    def first(self, impl: str, key: str) -> dict[str, Any] | None:
        good = self.good(impl, key)
        return good[0] if good else None


def run_subprocess(
    impl: str,
    workload: str,
    params: dict[str, Any],
    timeout: float,
    snapshot: Snapshot,
    extra_args: Iterable[str] = (),
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [
            str(python_for(impl)),
            str(snapshot.script),
            "--impl",
            impl,
            "--workload",
            workload,
            "--params",
            json.dumps(params),
            "--out",
            str(out),
            *extra_args,
        ]
        try:
            completed = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=subprocess_env(impl, snapshot)
            )
        except subprocess.TimeoutExpired:
            return _crash(impl, workload, params, f"timed out after {timeout:.0f} s")
        if out.exists():
            record: dict[str, Any] = json.loads(out.read_text())
            if completed.returncode != 0 and record.get("ok"):
                record["ok"] = False
                record["detail"] = f"exit status {completed.returncode}: {completed.stderr[-500:]}"
            return record
        return _crash(impl, workload, params, f"exit status {completed.returncode}: {completed.stderr[-2000:]}")


def _crash(impl: str, workload: str, params: dict[str, Any], detail: str) -> dict[str, Any]:
    return {"impl": impl, "workload": workload, "params": params, "ok": False, "na": None, "detail": detail}


def describe(record: dict[str, Any]) -> str:
    if record.get("na") is not None:
        return f"n/a: {record['na']}"
    if not record.get("ok"):
        return f"WRONG/CRASH: {record.get('detail')}"
    return f"{record['wall_s']:.4f} s"


def run_all(
    plan: Plan, rounds: int, impls: set[str], timeout: float, trace_memory: bool, snapshot: Snapshot
) -> Results:
    results = Results()
    for round_number in range(1, rounds + 1):
        done_baselines: set[str] = set()
        for case in plan.cases:
            for impl in case.impls:
                if impl not in impls:
                    continue
                record = run_subprocess(impl, case.workload, case.params, timeout, snapshot)
                results.add(impl, case.key, record)
                say(f"[round {round_number}/{rounds}] {impl:<9} {case.key:<40} {describe(record)}")
            if "baseline" not in impls:
                continue
            for ref in case.baselines:
                if ref in done_baselines:
                    continue
                done_baselines.add(ref)
                base = plan.baselines[ref]
                record = run_subprocess("baseline", base.workload, base.params, timeout, snapshot)
                results.add("baseline", ref, record)
                say(f"[round {round_number}/{rounds}] {'baseline':<9} {ref:<40} {describe(record)}")
    if trace_memory:
        for case in plan.cases:
            if case.workload != "fan_out":
                continue
            pairs = [(impl, case.key, case.params) for impl in case.impls if impl in impls]
            if "baseline" in impls:
                pairs += [("baseline", ref, plan.baselines[ref].params) for ref in case.baselines]
            for impl, key, params in pairs:
                record = run_subprocess(impl, "fan_out", params, timeout, snapshot, ["--tracemalloc"])
                if record.get("ok"):
                    results.memory[(impl, key)] = record
                else:
                    results.failures.append(record)
                say(f"[tracemalloc] {impl:<9} {key:<40} {describe(record)}")
    return results


# --------------------------------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------------------------------


def fmt_s(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    if value >= 0.01:
        return f"{value:.3f}"
    return f"{value:.4f}"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}x" if value >= 100 else f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def fmt_rate(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:,.0f} {unit}/s"


def fmt_mb(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def machine_info() -> dict[str, str]:
    info = {"platform": platform.platform(), "cores": str(os.cpu_count())}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
        if models:
            info["cpu"] = models[0]
        meminfo = Path("/proc/meminfo").read_text().splitlines()[0]
        info["memory"] = f"{int(meminfo.split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        info["cpu"] = platform.processor() or "unknown"
    return info


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "miniagents_nb"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        return head + (" + uncommitted changes in miniagents_nb/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@dataclass
class Target:
    name: str
    bar: str
    measured: str
    passed: bool | None  # None: n/a


def target_adder(out: list[Target]) -> Callable[[str, str, float | None, Callable[[float], bool], str], None]:
    """`add(name, bar, value, passes, shown)`: a target into `out` ("not measured", n/a, when `value` is None)."""

    def add(name: str, bar: str, value: float | None, passes: Callable[[float], bool], shown: str) -> None:
        measured = shown if value is not None else "not measured"
        out.append(Target(name, bar, measured, None if value is None else passes(value)))

    return add


class Report:
    def __init__(self, plan: Plan, results: Results, rounds: int, quick: bool, load: str, revision: str) -> None:
        self.load = load
        self.revision = revision
        self.plan = plan
        self.r = results
        self.rounds = rounds
        self.quick = quick
        self.case_by_key = {case.key: case for case in plan.cases}

    # --- helpers ---------------------------------------------------------------------------------------------------

    def wall(self, impl: str, key: str) -> float | None:
        return self.r.median(impl, key, "wall_s")

    def per_call_kb(self, impl: str, key: str, calls: int) -> tuple[float | None, float | None]:
        rss = self.r.median(impl, key, "rss_delta_mb")
        memory = self.r.memory.get((impl, key))
        traced = memory.get("tracemalloc_peak_mb") if memory else None
        return (
            None if rss is None else rss * 2**20 / calls / KB,
            None if traced is None else traced * 2**20 / calls / KB,
        )

    def hop_cost_us(self, impl: str, producer: str) -> float | None:
        """Extra µs per token of one re-streaming hop: the slope between D=1 and D=max."""
        n, d_max = self.plan.sizes["N"], self.plan.sizes["D_max"]
        first = self.wall(impl, f"token_stream {producer} restream D=1")
        last = self.wall(impl, f"token_stream {producer} restream D={d_max}")
        if first is None or last is None:
            return None
        return (last - first) / ((d_max - 1) * n) * 1e6

    def baseline_hop_cost_us(self, variant: str) -> float | None:
        n, d_max = self.plan.sizes["N"], self.plan.sizes["D_max"]
        first = self.wall("baseline", f"tokens {variant} D=1")
        last = self.wall("baseline", f"tokens {variant} D={d_max}")
        if first is None or last is None:
            return None
        return (last - first) / ((d_max - 1) * n) * 1e6

    def status(self, impl: str, key: str) -> str:
        na = self.r.na(impl, key)
        if na is not None:
            return "n/a"
        records = self.r.runs.get((impl, key), [])
        if not records:
            return "not run"
        bad = [r for r in records if not r.get("ok")]
        return f"{len(bad)} WRONG" if bad else f"ok ×{len(records)}"

    # --- tables ----------------------------------------------------------------------------------------------------

    def time_table(self) -> list[str]:
        lines = [
            "| workload | params | nb s | nb min–max | upstream s | raw asyncio s | upstream ÷ nb | nb ÷ asyncio "
            "| nb throughput | upstream throughput | checks nb / upstream / asyncio |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for case in self.plan.cases:
            na = self.r.na("nb", case.key)
            if na is not None:
                lines.append(f"| {case.workload} | {case.label} | {na} | | | | | | | | n/a |")
                continue
            nb, up = self.wall("nb", case.key), self.wall("upstream", case.key)
            spread = self.r.spread("nb", case.key)
            bases = [(self.plan.baselines[ref].label, self.wall("baseline", ref)) for ref in case.baselines]
            base_cell = " / ".join(f"{fmt_s(w)} ({label})" for label, w in bases) or "—"
            base_ratio = " / ".join(fmt_ratio(ratio(nb, w)) for _, w in bases) or "—"
            record = self.r.first("nb", case.key) or self.r.first("upstream", case.key)
            ops, unit = (record["ops"], record["unit"]) if record else (None, "")
            checks = " / ".join(
                [self.status(impl, case.key) if impl in case.impls else "—" for impl in ("nb", "upstream")]
                + [self.status("baseline", ref) for ref in case.baselines]
            )
            lines.append(
                f"| {case.workload} | {case.label} | {fmt_s(nb)} "
                f"| {'—' if spread is None else f'{fmt_s(spread[0])}–{fmt_s(spread[1])}'} | {fmt_s(up)} "
                f"| {base_cell} | {fmt_ratio(ratio(up, nb))} | {base_ratio} "
                f"| {fmt_rate(ratio(ops, nb), unit)} | {fmt_rate(ratio(ops, up), unit)} | {checks} |"
            )
        return lines

    def memory_gc_table(self) -> list[str]:
        lines = [
            "| workload | params | nb peak RSS MB | nb RSS Δ MB | upstream peak RSS MB | upstream RSS Δ MB "
            "| nb GC share | nb GC passes g0/g1/g2 | upstream GC share | upstream GC passes g0/g1/g2 |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for case in self.plan.cases:
            if self.r.na("nb", case.key) is not None:
                continue
            cells = []
            for impl in ("nb", "upstream"):
                cells += [fmt_mb(self.r.median(impl, case.key, "peak_rss_mb"))]
                cells += [fmt_mb(self.r.median(impl, case.key, "rss_delta_mb"))]
            gc_cells = []
            for impl in ("nb", "upstream"):
                wall, gc_s = self.wall(impl, case.key), self.r.median(impl, case.key, "gc_s")
                share = ratio(gc_s, wall)
                good = self.r.good(impl, case.key)
                passes = (
                    "/".join(str(int(statistics.median(r["gc_collections"][g] for r in good))) for g in range(3))
                    if good
                    else "—"
                )
                gc_cells += ["—" if share is None else f"{share:.0%} ({fmt_s(gc_s)} s)", passes]
            lines.append(f"| {case.workload} | {case.label} | {' | '.join(cells)} | {' | '.join(gc_cells)} |")
        return lines

    def per_call_table(self) -> list[str]:
        lines = [
            "| K | implementation | wall s | RSS Δ per call KB | tracemalloc peak per call KB |",
            "|---|---|---|---|---|",
        ]
        for case in self.plan.cases:
            if case.workload != "fan_out":
                continue
            k = int(case.params["K"])
            entries = [(impl, case.key) for impl in case.impls] + [("baseline", ref) for ref in case.baselines]
            for impl, key in entries:
                if not self.r.good(impl, key):
                    continue
                rss_kb, traced_kb = self.per_call_kb(impl, key, k)
                name = "raw asyncio (gather)" if impl == "baseline" else impl
                lines.append(
                    f"| {k:,} | {name} | {fmt_s(self.wall(impl, key))} "
                    f"| {'—' if rss_kb is None else f'{rss_kb:.1f}'} "
                    f"| {'—' if traced_kb is None else f'{traced_kb:.1f}'} |"
                )
        return lines

    def recording_pairs(self) -> list[tuple[str, str, str]]:
        """(case recording off, case recording on, what the size is per) for every recording case."""
        pairs = []
        for case in self.plan.cases:
            if case.params.get("record"):
                off = case.key.removesuffix(" record")
                pairs.append((off, case.key, "call" if case.workload == "fan_out" else "1k tokens"))
        return pairs

    def recording_table(self) -> list[str]:
        lines = [
            "| workload | params | off s | on s | on ÷ off | writer done after s | store size | size per call or 1k tokens |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for off, on, per in self.recording_pairs():
            case = self.case_by_key[on]
            off_s, on_s = self.wall("nb", off), self.wall("nb", on)
            flush = self.r.median("nb", on, "flush_s")
            record = self.r.first("nb", on)
            size = None if record is None else record["extra"].get("store_bytes")
            units = None
            if record is not None:
                units = record["extra"].get("recorded_calls") if per == "call" else record["ops"] / 1000
            per_unit = None if size is None or not units else size / units
            lines.append(
                f"| {case.workload} | {case.label} | {fmt_s(off_s)} | {fmt_s(on_s)} | {fmt_ratio(ratio(on_s, off_s))} "
                f"| {fmt_s(flush)} | {'—' if size is None else f'{size / 2**20:.1f} MB'} "
                f"| {'—' if per_unit is None else f'{per_unit / KB:.2f} KB per {per}'} |"
            )
        return lines

    def hop_table(self) -> list[str]:
        d_max = self.plan.sizes["D_max"]
        lines = [
            f"| implementation | µs per token per re-streaming hop (slope D=1 → D={d_max}) |",
            "|---|---|",
        ]
        for impl in ("nb", "upstream"):
            for producer in ("gen", "appender"):
                value = self.hop_cost_us(impl, producer)
                lines.append(f"| {impl}, {producer} producer | {'—' if value is None else f'{value:.3f}'} |")
        for variant, label in (("queue", "raw asyncio, queue relay tasks"), ("agen", "raw asyncio, async-gen chain")):
            value = self.baseline_hop_cost_us(variant)
            lines.append(f"| {label} | {'—' if value is None else f'{value:.3f}'} |")
        return lines

    # --- targets ---------------------------------------------------------------------------------------------------

    def targets(self) -> list[Target]:
        s = self.plan.sizes
        out: list[Target] = []
        add = target_adder(out)

        big, small = f"fan_out K={s['fan_big']}", f"fan_out K={s['fan_small']}"
        nb_big, up_big = self.wall("nb", big), self.wall("upstream", big)
        speedup = ratio(up_big, nb_big)
        add(
            f"fan-out K={s['fan_big']:,}: faster than upstream",
            "≥ 20x",
            speedup,
            lambda v: v >= 20,
            f"{fmt_ratio(speedup)} ({fmt_s(up_big)} s → {fmt_s(nb_big)} s)",
        )
        base_big = self.wall("baseline", f"gather fan_out K={s['fan_big']}")
        overhead = ratio(nb_big, base_big)
        add(
            f"fan-out K={s['fan_big']:,}: vs `asyncio.gather`",
            "≤ 10x",
            overhead,
            lambda v: v <= 10,
            f"{fmt_ratio(overhead)} ({fmt_s(nb_big)} s vs {fmt_s(base_big)} s)",
        )
        rss_kb, traced_kb = self.per_call_kb("nb", big, s["fan_big"])
        traced = "" if traced_kb is None else f"; tracemalloc peak {traced_kb:.1f} KB"
        add(
            f"fan-out K={s['fan_big']:,}: memory per child call (RSS Δ / K)",
            "≤ 5 KB",
            rss_kb,
            lambda v: v <= 5,
            f"{rss_kb or 0:.1f} KB{traced}",
        )
        scaling = ratio(nb_big, self.wall("nb", small))
        add(
            f"fan-out K={s['fan_small']:,} → {s['fan_big']:,}: linear scaling (time ratio)",
            "≤ 11",
            scaling,
            lambda v: v <= 11,
            f"{scaling or 0:.1f}",
        )
        par = self.wall("nb", f"parallel_latency K={s['par_big']} aggregator")
        add(
            f"parallel latency K={s['par_big']:,} (aggregator): wall time",
            "≤ 0.6 s",
            par,
            lambda v: v <= 0.6,
            f"{fmt_s(par)} s",
        )
        hop = self.hop_cost_us("nb", "gen")
        add(
            "re-streaming: cost per token per relay agent (gen producer)",
            "≤ 0.5 µs",
            hop,
            lambda v: v <= 0.5,
            f"{hop or 0:.3f} µs",
        )
        key = "token_stream appender promise D=1"
        app = ratio(self.wall("upstream", key), self.wall("nb", key))
        add(
            "appender-fed streaming (D=1): tokens per second vs upstream",
            "≥ 8x",
            app,
            lambda v: v >= 8,
            f"{fmt_ratio(app)} ({fmt_rate(ratio(s['N'], self.wall('nb', key)), 'tok')})",
        )
        nb_rt, up_rt = self.wall("nb", "trigger_round_trip"), self.wall("upstream", "trigger_round_trip")
        rt = ratio(up_rt, nb_rt)
        add(
            "trigger round trip: faster than upstream",
            "≥ 10x",
            rt,
            lambda v: v >= 10,
            f"{fmt_ratio(rt)} ({(up_rt or 0) / s['I'] * 1e6:.0f} µs → {(nb_rt or 0) / s['I'] * 1e6:.0f} µs per call)",
        )
        chain = self.wall("nb", f"nesting agents L={s['L']}")
        per_level = None if chain is None else chain / s["L"] * 1e3
        add(
            f"chain of {s['L']} agents: time per level",
            "≤ 0.05 ms",
            per_level,
            lambda v: v <= 0.05,
            f"{per_level or 0:.3f} ms",
        )
        for off, on, _ in self.recording_pairs():
            cost = ratio(self.wall("nb", on), self.wall("nb", off))
            add(
                f"recording to a run store: {self.case_by_key[on].label}",
                "≤ 1.3x",
                cost,
                lambda v: v <= 1.3,
                fmt_ratio(cost),
            )
        na = self.r.na("nb", "notebook_view view")
        if na is not None:
            out.append(Target("live sequence view: time with view ÷ without", "≤ 1.3x", na, None))
            out.append(Target("live sequence view: comm messages per second", "≤ 25 /s", na, None))
        else:
            view = ratio(self.wall("nb", "notebook_view view"), self.wall("nb", "notebook_view no view"))
            add("live sequence view: time with view ÷ without", "≤ 1.3x", view, lambda v: v <= 1.3, fmt_ratio(view))
            for label, key in (("live sequence view", "view"), ("trace + timeline view", "trace + timeline")):
                if key != "view":
                    with_trace = ratio(
                        self.wall("nb", f"notebook_view {key}"), self.wall("nb", "notebook_view no view")
                    )
                    add(
                        f"{label}: time with view ÷ without",
                        "≤ 1.3x",
                        with_trace,
                        lambda v: v <= 1.3,
                        fmt_ratio(with_trace),
                    )
                paced = self.r.good("nb", f"notebook_view {key}, paced")
                rates = [r["extra"].get("comm_messages", 0) / r["wall_s"] for r in paced]
                rate = statistics.median(rates) if rates else None
                add(
                    f"{label}: comm messages per second (paced stream)",
                    "≤ 25 /s",
                    rate,
                    lambda v: v <= 25,
                    f"{rate or 0:.1f} /s",
                )
        return out

    def tool_loop_table(self) -> list[str]:
        lines = ["| what | time |", "|---|---|"]
        one = self.wall("nb", "tool_loop loop N=1")
        many = self.wall("nb", f"tool_loop loop N={TOOL_CALLS}")
        direct = self.wall("nb", f"tool_loop direct N={TOOL_CALLS}")
        if one is None or many is None or direct is None:
            return lines
        count = self.plan.sizes["I"]
        per_tool_call = (many - one) / (count * (TOOL_CALLS - 1))
        per_direct_call = direct / (count * TOOL_CALLS)
        lines += [
            f"| one LLM call: a turn with 1 tool call, then the answer (2 fake turns) | {one / count * 1e6:.0f} µs |",
            f"| one LLM call: a turn with {TOOL_CALLS} tool calls, then the answer | {many / count * 1e6:.0f} µs |",
            f"| one more tool call in the loop (the difference ÷ {TOOL_CALLS - 1}) | {per_tool_call * 1e6:.0f} µs |",
            f"| a direct call of a no-op agent ({TOOL_CALLS} at once) | {per_direct_call * 1e6:.0f} µs |",
            f"| the loop's own overhead per tool call | {(per_tool_call - per_direct_call) * 1e6:.0f} µs "
            f"({fmt_ratio(ratio(per_tool_call, per_direct_call))} a direct call) |",
        ]
        return lines

    def asyncio_targets(self) -> list[Target]:
        """Issue 16: within 3x of hand-written asyncio everywhere, and linear to 100,000 calls."""
        s = self.plan.sizes
        out: list[Target] = []
        add = target_adder(out)

        big, xl = f"fan_out K={s['fan_big']}", f"fan_out K={s['fan_xl']}"
        nb_big, base_big = self.wall("nb", big), self.wall("baseline", f"gather {big}")
        fan = ratio(nb_big, base_big)
        add(
            f"fan-out K={s['fan_big']:,} × 3 messages ÷ `gather`",
            "≤ 3x",
            fan,
            lambda v: v <= 3,
            f"{fmt_ratio(fan)} ({fmt_s(nb_big)} s vs {fmt_s(base_big)} s)",
        )
        nb_rt, base_rt = self.wall("nb", "trigger_round_trip"), self.wall("baseline", "task round trip")
        rt = ratio(nb_rt, base_rt)
        add(
            "trigger round trip ÷ task spawn + await",
            "≤ 3x",
            rt,
            lambda v: v <= 3,
            f"{fmt_ratio(rt)} ({(nb_rt or 0) / s['I'] * 1e6:.1f} µs vs {(base_rt or 0) / s['I'] * 1e6:.1f} µs)",
        )
        nb_xl = self.wall("nb", xl)
        scaling = ratio(nb_xl, nb_big)
        add(
            f"fan-out K={s['fan_xl']:,} ÷ K={s['fan_big']:,} (time)",
            "≤ 11",
            scaling,
            lambda v: v <= 11,
            f"{scaling or 0:.1f} ({fmt_s(nb_xl)} s; ÷ `gather` {fmt_ratio(ratio(nb_xl, self.wall('baseline', f'gather {xl}')))})",
        )
        big_kb, _ = self.per_call_kb("nb", big, s["fan_big"])
        xl_kb, _ = self.per_call_kb("nb", xl, s["fan_xl"])
        flat = ratio(xl_kb, big_kb)
        add(
            f"memory per call flat: RSS Δ / K at K={s['fan_xl']:,} ÷ at K={s['fan_big']:,}",
            "≤ 1.25",
            flat,
            lambda v: v <= 1.25,
            f"{flat or 0:.2f} ({xl_kb or 0:.2f} KB vs {big_kb or 0:.2f} KB)",
        )
        add(
            f"memory per child call, K={s['fan_big']:,} (RSS Δ / K)",
            "≤ 2 KB",
            big_kb,
            lambda v: v <= 2,
            f"{big_kb or 0:.2f} KB",
        )
        key = "token_stream appender promise D=1"
        app = ratio(self.wall("nb", key), self.wall("baseline", "tokens agen D=1"))
        add(
            f"LLM-style appender, {s['N']:,} tokens ÷ async-generator floor",
            "≤ 2x",
            app,
            lambda v: v <= 2,
            fmt_ratio(app),
        )
        own = {big, xl, "trigger_round_trip", key}
        worst: tuple[float, str] | None = None
        for case in self.plan.cases:
            if case.key in own or not case.baselines or "nb" not in case.impls:
                continue
            value = ratio(self.wall("nb", case.key), self.wall("baseline", case.baselines[0]))
            if value is not None and (worst is None or value > worst[0]):
                worst = (value, f"{case.workload} {case.label} ÷ {self.plan.baselines[case.baselines[0]].label}")
        add(
            "every other row ÷ its hand-written asyncio shape (the first baseline listed): the worst",
            "≤ 3x",
            None if worst is None else worst[0],
            lambda v: v <= 3,
            "" if worst is None else f"{fmt_ratio(worst[0])} ({worst[1]})",
        )
        return out

    def targets_table(self, targets: list[Target] | None = None) -> list[str]:
        lines = ["| target | bar | measured | result |", "|---|---|---|---|"]
        for target in self.targets() if targets is None else targets:
            result = "n/a" if target.passed is None else "PASS" if target.passed else "**MISS**"
            lines.append(f"| {target.name} | {target.bar} | {target.measured} | {result} |")
        return lines

    # --- the document ----------------------------------------------------------------------------------------------

    def versions(self) -> list[str]:
        lines = []
        for impl in ("nb", "upstream", "baseline"):
            record = next((r for (i, _), rs in self.r.runs.items() if i == impl for r in rs if "versions" in r), None)
            if record is not None:
                text = ", ".join(f"{name} {value}" for name, value in record["versions"].items())
                lines.append(f"- {impl}: {text}")
        return lines

    @staticmethod
    def table(lines: list[str]) -> list[str]:
        return lines if len(lines) > 2 else ["_(not run)_"]

    def markdown(self, command: str, started: datetime.datetime, seconds: float) -> str:
        mode = "quick smoke mode (small sizes: not comparable with the targets)" if self.quick else "full mode"
        parts = [
            "# Benchmark results: miniagents_nb vs upstream MiniAgents 0.0.35 vs raw asyncio",
            "",
            f"Produced by `{command}` ({mode}, {self.rounds} interleaved round(s), each run in a fresh process; "
            f"medians shown) on {started:%Y-%m-%d %H:%M} UTC in {seconds / 60:.1f} min. "
            f"miniagents_nb at `{self.revision}`.",
            "",
            "How to read it: `upstream ÷ nb` above 1 means this package is that many times faster than upstream; "
            "`nb ÷ asyncio` is this package's overhead over hand-written asyncio doing the same work (1x would be "
            "free). Wall time spans from just before the first `trigger` to leaving `async with MiniAgents()`.",
            "",
            "## Targets (issue 16: the floor is asyncio)",
            "",
            *self.targets_table(self.asyncio_targets()),
            "",
            "## Targets (issue 8, and the bounds of later issues)",
            "",
            *self.targets_table(),
            "",
            "## Wall time",
            "",
            "Token workloads in `promise` mode forward the promise object, so the fair baseline is one hop (D=1); "
            "in `restream` mode every agent re-streams the tokens and the baseline has D hops. Two baselines are "
            "given where they exist: relay tasks linked by `asyncio.Queue`s, and a chain of async generators (the "
            "floor).",
            "",
            *self.table(self.time_table()),
            "",
            "## Cost of one re-streaming hop",
            "",
            *self.table(self.hop_table()),
            "",
            "## Tool loop overhead (fake LLM, no-op tool)",
            "",
            f"The cost of one more tool call is taken from two LLM calls that differ only in how many tool calls their "
            f"first turn makes (1 and {TOOL_CALLS}), so the fake model's own turns cancel out; a direct agent call of a "
            "no-op agent is what the same work costs without a model. The difference is the loop's own work per call: "
            "the tool call's streamed message, its agent call under the LLM call, the arguments' validation, the "
            "result message and the exchange sent back to the model.",
            "",
            *self.table(self.tool_loop_table()),
            "",
            "## Recording (run store, issue 13)",
            "",
            "The same workload with `MiniAgents(record_to=RunStore(<fresh file>))`: `on ÷ off` compares the medians of "
            "the timed span (which ends when the context is left; the writer thread works during it, off the loop). "
            "`writer done after` is how long `store.flush()` then waited for the writer to finish writing the run. "
            "The size is the SQLite file after `close()`.",
            "",
            *self.table(self.recording_table()),
            "",
            "## Memory per child call (fan-out)",
            "",
            "RSS Δ is the peak RSS minus the RSS just before the timed span (median of the timed runs); "
            "the tracemalloc peak comes from one extra run with tracemalloc on (Python allocations only). "
            "1 KB = 1024 bytes.",
            "",
            *self.table(self.per_call_table()),
            "",
            "## Memory and GC",
            "",
            "GC share: time inside the cyclic garbage collector (`gc.callbacks`) as a share of the wall time.",
            "",
            *self.table(self.memory_gc_table()),
            "",
            "## Machine and versions",
            "",
            *[f"- {name}: {value}" for name, value in machine_info().items()],
            f"- load average (1/5/15 min) before → after the run: {self.load}",
            *self.versions(),
            "",
        ]
        if self.r.failures:
            parts += ["## WRONG RESULTS OR CRASHES", ""]
            for record in self.r.failures:
                parts.append(
                    f"- {record.get('impl')} {record.get('workload')} {json.dumps(record.get('params'))}: "
                    f"{record.get('detail')}"
                )
            parts.append("")
        return "\n".join(parts)


# --------------------------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark miniagents_nb against upstream MiniAgents 0.0.35 and raw asyncio.",
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="smoke mode: small sizes, 1 round")
    parser.add_argument("--only", action="append", default=[], help="run only cases whose key contains this")
    parser.add_argument(
        "--impls", default=",".join(IMPLS), help="comma-separated subset of nb,upstream,baseline (default: all)"
    )
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the extra tracemalloc fan-out runs")
    parser.add_argument(
        "--no-snapshot", action="store_true", help="run the live miniagents_nb/ tree instead of a copy taken at start"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for one run (default 600)")
    parser.add_argument(
        "--out", default=str(BENCH / "results.md"), help="the markdown report (default bench/results.md)"
    )
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    impls = {impl.strip() for impl in args.impls.split(",") if impl.strip()}
    if not impls <= set(IMPLS) or rounds < 1:
        parser.error("--impls takes nb, upstream, baseline; --rounds must be at least 1")

    plan = build_plan(args.quick)
    if args.only:
        plan.cases = [case for case in plan.cases if any(part in case.key for part in args.only)]
    ensure_environments(need_upstream="upstream" in impls)

    command = "python3 bench/run.py" + "".join(f" {shlex.quote(a)}" for a in (sys.argv[1:] if argv is None else argv))
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = load_average()
    clock = time.perf_counter()
    revision = git_revision() + (" (live tree)" if args.no_snapshot else ", copied at the start")
    with tempfile.TemporaryDirectory(prefix="miniagents_nb_bench_") as snapshot_dir:
        snapshot = take_snapshot(Path(snapshot_dir), copy_package=not args.no_snapshot)
        results = run_all(plan, rounds, impls, args.timeout, not args.no_tracemalloc, snapshot)
    seconds = time.perf_counter() - clock

    report = Report(plan, results, rounds, args.quick, f"{load_before} → {load_average()}", revision)
    text = report.markdown(command, started, seconds)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    raw = {
        "command": command,
        "started_utc": started.isoformat(),
        "seconds": seconds,
        "runs": [{"key": key, **record} for (_, key), records in results.runs.items() for record in records],
        "tracemalloc": [{"key": key, **record} for (_, key), record in results.memory.items()],
    }
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1))
    say("")
    say(text)
    say(f"written: {out} and {out.with_suffix('.json')}")
    if results.failures:
        say(f"{len(results.failures)} run(s) returned a wrong result or crashed: see the end of the report.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

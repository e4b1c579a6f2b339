"""Throughput of the complaint classifier: in process, and through `cityops classify` (stdin → stdout)."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def texts(repeat: int) -> list[str]:
    """Every labelled complaint shipped (short app texts to long call transcripts), `repeat` times."""
    base = [json.loads(line)["text"] for path in sorted(DATA.glob("complaints_*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return base * repeat


def one_core() -> str:
    """Pin this process (and the `cityops classify` it starts) to one core, so the figures are one core's."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def in_process(items: list[str]) -> dict[str, float]:
    from cityops.taxonomy import load_taxonomy
    from streams.classify import Classifier
    from streams.classify.classifier import DEFAULT_RULES

    t0, c0 = time.perf_counter(), time.process_time()
    clf = Classifier(load_taxonomy(), DEFAULT_RULES)  # a fresh load: rules checked, regexes compiled, model read
    load = time.perf_counter() - t0
    for text in items:
        clf.classify(text)
    elapsed = time.perf_counter() - t0 - load
    cpu = time.process_time() - c0  # this process's CPU time, load included: what one core does, whoever else runs
    return {"load_ms": load * 1e3, "complaints": len(items), "seconds": elapsed,
            "per_second": len(items) / elapsed, "per_second_with_load": len(items) / (elapsed + load),
            "per_cpu_second": len(items) / cpu, "us_per_complaint": elapsed / len(items) * 1e6}


def cli(items: list[str]) -> dict[str, float]:
    """Whole command as an operator runs it: process start, imports, rules load, JSON out."""
    exe = Path(sys.executable).with_name("cityops")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from cityops.cli import main; main()"]
    payload = ("\n".join(items) + "\n").encode()
    startup = _run(cmd, b"")[0]
    elapsed, lines, cpu = _run(cmd, payload)
    if lines != len(items):
        raise RuntimeError(f"cityops classify printed {lines} lines for {len(items)} complaints")
    steady = elapsed - startup
    return {"complaints": len(items), "seconds": elapsed, "startup_seconds": startup, "cpu_seconds": cpu,
            "per_second": len(items) / elapsed, "per_cpu_second": len(items) / cpu,
            "per_second_after_startup": len(items) / steady if steady > 0 else 0.0}


def _run(cmd: list[str], payload: bytes) -> tuple[float, int, float]:
    """Wall seconds, output lines and the command's CPU seconds (user + system, start-up included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([*cmd, "classify"], input=payload, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"cityops classify failed: {p.stderr.decode(errors='replace').strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, p.stdout.count(b"\n"), cpu


def report(repeat: int) -> tuple[dict, str]:
    pinned = one_core()
    load = os.getloadavg()[0]
    items = texts(repeat)
    figures = {"in_process": in_process(items), "cli": cli(items)}
    ip, c = figures["in_process"], figures["cli"]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = "\n".join([
        f"## {when} — `cityops bench classify --repeat {repeat}`", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, one process "
        f"{pinned}; 1-min load average before the run {load:.1f} (other work shares the machine, so "
        f"figures move with it). Input: every labelled complaint under tests/data ({len(items) // repeat}) "
        f"× {repeat} = {len(items):,}.", "",
        "Complaints per CPU-second count this process's own CPU time, start-up included: what one core does "
        "when nothing else competes for it; wall-clock figures also pay for whatever else runs.", "",
        "| path | complaints | seconds | complaints/s | per CPU-second | notes |",
        "|---|---:|---:|---:|---:|---|",
        f"| in process `Classifier.classify` | {ip['complaints']:,} | {ip['seconds']:.2f} | {ip['per_second']:,.0f} | "
        f"{ip['per_cpu_second']:,.0f} | {ip['us_per_complaint']:.0f} µs each; rules and model load "
        f"{ip['load_ms']:.0f} ms; {ip['per_second_with_load']:,.0f}/s with the load |",
        f"| `cityops classify` (stdin → JSON lines) | {c['complaints']:,} | {c['seconds']:.2f} | {c['per_second']:,.0f} | "
        f"{c['per_cpu_second']:,.0f} | incl. {c['startup_seconds']:.2f} s start-up; "
        f"{c['per_second_after_startup']:,.0f}/s after it |", "", ""])
    return figures, md


def append(path: Path, section: str) -> None:
    head = "# Benchmarks: complaint classification\n\nAppended by `cityops bench classify`; newest last.\n\n"
    text = path.read_text(encoding="utf-8") if path.exists() else head
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n\n" + section, encoding="utf-8")

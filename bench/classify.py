"""Throughput of the complaint classifier: in process, and through `cityops classify` (stdin → stdout)."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

LABELLED = Path(__file__).resolve().parents[1] / "tests" / "data" / "complaints_labelled.jsonl"


def texts(repeat: int) -> list[str]:
    base = [json.loads(line)["text"] for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    return base * repeat


def in_process(items: list[str]) -> dict[str, float]:
    from cityops.taxonomy import load_taxonomy
    from streams.classify import Classifier
    from streams.classify.classifier import DEFAULT_RULES

    t0 = time.perf_counter()
    clf = Classifier(load_taxonomy(), DEFAULT_RULES)  # a fresh load: rules parsed, checked, regexes compiled
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    for text in items:
        clf.classify(text)
    elapsed = time.perf_counter() - t0
    return {"rules_load_ms": load * 1e3, "complaints": len(items), "seconds": elapsed,
            "per_second": len(items) / elapsed, "us_per_complaint": elapsed / len(items) * 1e6}


def cli(items: list[str]) -> dict[str, float]:
    """Whole command as an operator runs it: process start, imports, rules load, JSON out."""
    exe = Path(sys.executable).with_name("cityops")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from cityops.cli import main; main()"]
    payload = ("\n".join(items) + "\n").encode()
    startup = _run(cmd, b"")[0]
    elapsed, lines = _run(cmd, payload)
    if lines != len(items):
        raise RuntimeError(f"cityops classify printed {lines} lines for {len(items)} complaints")
    steady = elapsed - startup
    return {"complaints": len(items), "seconds": elapsed, "startup_seconds": startup,
            "per_second": len(items) / elapsed, "per_second_after_startup": len(items) / steady if steady > 0 else 0.0}


def _run(cmd: list[str], payload: bytes) -> tuple[float, int]:
    t0 = time.perf_counter()
    p = subprocess.run([*cmd, "classify"], input=payload, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"cityops classify failed: {p.stderr.decode(errors='replace').strip()}")
    return elapsed, p.stdout.count(b"\n")


def report(repeat: int) -> tuple[dict, str]:
    load = os.getloadavg()[0]
    items = texts(repeat)
    figures = {"in_process": in_process(items), "cli": cli(items)}
    ip, c = figures["in_process"], figures["cli"]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = "\n".join([
        f"## {when} — `cityops bench classify --repeat {repeat}`", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, one process "
        f"(single-threaded); 1-min load average before the run {load:.1f} (other work shares the machine, so "
        f"figures move with it). Input: the labelled set ({len(items) // repeat} complaints) × {repeat} = {len(items):,}.", "",
        "| path | complaints | seconds | complaints/s | notes |", "|---|---:|---:|---:|---|",
        f"| in process `Classifier.classify` | {ip['complaints']:,} | {ip['seconds']:.2f} | {ip['per_second']:,.0f} | "
        f"{ip['us_per_complaint']:.0f} µs each; rules load {ip['rules_load_ms']:.0f} ms |",
        f"| `cityops classify` (stdin → JSON lines) | {c['complaints']:,} | {c['seconds']:.2f} | {c['per_second']:,.0f} | "
        f"incl. {c['startup_seconds']:.2f} s start-up; {c['per_second_after_startup']:,.0f}/s after it |", "", ""])
    return figures, md


def append(path: Path, section: str) -> None:
    head = "# Benchmarks: complaint classification\n\nAppended by `cityops bench classify`; newest last.\n\n"
    text = path.read_text(encoding="utf-8") if path.exists() else head
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n\n" + section, encoding="utf-8")

"""Seconds from a fresh clone to a working .venv: pip against uv, runtime against dev.

Clones the repository under ``--work`` (the working tree's Makefile and pyproject.toml
copied over the clone, so uncommitted changes are measured), then per case and run:
removes the clone's .venv, runs the case's ``make`` target and times it, then times the
first ``import torch, mlflow.server, optuna`` in the new .venv (uv does not compile
bytecode at install, pip does: the first import pays for it). Cases:

- ``pip-old``: ``make setup`` of revision ``--old-rev`` (the recipe before uv: pip, an
  upgrade of pip itself, torch, then ``-e '.[dev]'``);
- ``pip-runtime``: ``make setup INSTALLER=pip``: pip, runtime dependencies only;
- ``uv-runtime``: ``make setup``: what ``make sweep`` installs;
- ``uv-dev``: ``make setup-dev``: what ``make test`` installs.

Each case runs once with empty pip and uv caches (``cold``: a new machine, every wheel
downloaded or read from the machine's local indexes) and then ``--repeats`` times with the
caches that run filled (``warm``: a machine that has set up before, CI included). Prints a
Markdown table for docs/BENCHMARKS.md. Standard library only; run it with the system
Python from the repository root:

    python3 benchmarks/setup_bench.py [--repeats 3] [--cases pip-old,uv-runtime]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

OLD_REV = "f26de37"  # the last commit whose Makefile installs with pip alone
CASES = {
    "pip-old": ["make", "-f", "Makefile.old", "setup"],
    "pip-runtime": ["make", "setup", "INSTALLER=pip"],
    "uv-runtime": ["make", "setup"],
    "uv-dev": ["make", "setup-dev"],
}
FIRST_IMPORT = "import torch, mlflow.server, optuna"
# No run of a case may take longer than this (a hung download fails the benchmark).
RUN_TIMEOUT_S = 1800


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    started = time.perf_counter()
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        subprocess.run(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=True,
            timeout=RUN_TIMEOUT_S,
        )  # fmt: skip
    return time.perf_counter() - started


def _clone(repo: Path, work: Path, old_rev: str) -> Path:
    clone = work / "clone"
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, timeout=300)
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(repo / name, clone / name)
    old = subprocess.run(
        ["git", "-C", str(repo), "show", f"{old_rev}:Makefile"],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    (clone / "Makefile.old").write_bytes(old)
    return clone


def _run_case(clone: Path, case: str, caches: Path, log: Path) -> tuple[float, float, float]:
    """(set-up seconds, first-import seconds, load average before) of one fresh .venv."""
    shutil.rmtree(clone / ".venv", ignore_errors=True)
    for egg in clone.glob("*.egg-info"):
        shutil.rmtree(egg)
    env = dict(os.environ)
    env["PIP_CACHE_DIR"] = str(caches / "pip")
    env["UV_CACHE_DIR"] = str(caches / "uv")
    env.pop("VIRTUAL_ENV", None)
    load = _loadavg()
    setup = _timed(CASES[case], clone, env, log)
    first = _timed([".venv/bin/python", "-c", FIRST_IMPORT], clone, env, log)
    return setup, first, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="warm runs per case")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--work", type=Path, default=Path("/tmp/salsweep-setup-bench"))
    parser.add_argument("--old-rev", default=OLD_REV)
    args = parser.parse_args()

    repo = Path(
        subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / "setup_bench.log"
    clone = _clone(repo, args.work, args.old_rev)
    print(f"{os.cpu_count()} cores; log: {log}")
    print("| case | caches | runs | set-up s (median) | set-up s (each) | first import s | load |")
    print("|---|---|---:|---:|---|---:|---:|")
    for case in args.cases.split(","):
        caches = args.work / "caches" / case
        shutil.rmtree(caches, ignore_errors=True)  # cold: nothing cached yet
        for kind, runs in (("cold", 1), ("warm", args.repeats)):
            results = [_run_case(clone, case, caches, log) for _ in range(runs)]
            if not results:
                continue
            setups = [r[0] for r in results]
            each = ", ".join(f"{s:.1f}" for s in setups)
            first = statistics.median(r[1] for r in results)
            load = statistics.median(r[2] for r in results)
            print(
                f"| {case} | {kind} | {runs} | {statistics.median(setups):.1f} | {each} "
                f"| {first:.1f} | {load:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

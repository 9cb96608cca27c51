"""Benchmark: the two jobs README and the user guide quote, as a new user runs them, timed — the figures of the docs.

In a fresh clone of this checkout's HEAD (``git clone``, into a temporary folder) with a new AiiDA folder
(``AIIDA_PATH`` there, so no profile exists):

1. ``bash quickstart.sh``: the README's first command (``scripts/install.sh`` into a new ``.venv`` — from the pip
   cache when it is warm —, ``verdi presto``, ``verdi run examples/bise_workchain.py``);
2. ``aiida-ccdcgan design Cd,Li`` in that clone and profile: the second system's database, loop and table;
3. the same command again: served from AiiDA's cache.

Each step's wall time, the round table and the hull line it printed, and the machine, date and commit go to
``benchmarks/results/main_job/main_job.json`` (committed); ``--markdown`` prints the docs' table from that file.

Usage: ``python benchmarks/bench_main_job.py [--keep]`` (about 15 min on 2 cores), ``python
benchmarks/bench_main_job.py --markdown``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "main_job" / "main_job.json"
STEPS = {
    "quickstart": ["bash", "quickstart.sh"],
    "design Cd,Li": [".venv/bin/aiida-ccdcgan", "design", "Cd,Li"],
    "design Cd,Li again": [".venv/bin/aiida-ccdcgan", "design", "Cd,Li"],
}
"""Each timed step and its command, run in the clone in this order."""


def printed_results(output: str) -> dict:
    """The round table (header and rows), the hull line and the training line a job printed."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("round  graphs"))
    table = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        table.append(line)
    hull = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("On the hull now:")), None)
    trained = re.search(r"models trained: (.*)", output)
    return {"table": table, "hull": hull, "models": trained.group(1) if trained else None}


def run_steps(keep: bool) -> dict:
    """Clone, run every step with a new AIIDA_PATH, and return the record."""
    folder = Path(tempfile.mkdtemp(prefix="ccdcgan-main-job-"))
    clone = folder / "aiida-ccdcgan"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    (folder / "aiida").mkdir()
    environment = {**os.environ, "AIIDA_PATH": str(folder / "aiida")}
    environment.pop("VIRTUAL_ENV", None)
    record = {
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
        ).stdout.strip(),
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "steps": {},
    }
    try:
        for name, command in STEPS.items():
            start = time.perf_counter()
            done = subprocess.run(command, cwd=clone, env=environment, capture_output=True, text=True)
            seconds = round(time.perf_counter() - start, 1)
            (folder / f"{name.replace(' ', '_').replace(',', '-')}.log").write_text(done.stdout + done.stderr)
            if done.returncode:
                raise SystemExit(f"{name} failed ({done.returncode}); its output is in {folder}")
            record["steps"][name] = {"command": " ".join(command), "seconds": seconds, **printed_results(done.stdout)}
            print(f"{name}: {seconds} s", flush=True)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return record


def cells(line: str) -> list[str]:
    """The cells of a line of the printed round table (separated by two or more spaces; "85.3 %" is one cell)."""
    return re.split(r"\s{2,}", line.strip())


def markdown(record: dict) -> str:
    """The docs' table of a record: one row per step."""
    rows = [
        f"Measured {record['date']} on {record['machine']}, commit {record['commit']}, by "
        "`python benchmarks/bench_main_job.py` (a fresh clone, a new AiiDA folder).",
        "",
        "| step | command | wall time | round table (graphs, valid, …, mean E_f) | on the hull after the round |",
        "|---|---|---|---|---|",
    ]
    for name, step in record["steps"].items():
        minutes, seconds = divmod(round(step["seconds"]), 60)
        row = " · ".join(cells(step["table"][1])) if len(step["table"]) > 1 else "–"
        rows.append(f"| {name} | `{step['command']}` | {minutes} min {seconds:02d} s | {row} | {step['hull'] or '–'} |")
    rows += ["", "Columns: " + " · ".join(cells(record["steps"]["quickstart"]["table"][0])) + "."]
    return "\n".join(rows)


def main() -> None:
    """Run the steps and write the record, or print the docs' table of the committed one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="Print the docs' table of the committed record.")
    parser.add_argument("--keep", action="store_true", help="Keep the clone, the AiiDA folder and the logs.")
    args = parser.parse_args()
    if not args.markdown:
        record = run_steps(args.keep)
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(record, indent=2) + "\n")
    print(markdown(json.loads(RESULT.read_text())))


if __name__ == "__main__":
    main()

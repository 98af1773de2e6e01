"""``python -m bench`` (``make bench``): run every benchmark once against a fresh local cloud.

Prints a table on stdout and writes everything to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import coldstart, roundtrips, throughput
from bench.harness import start_stack, stop_stack

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--trials", type=int, default=7, help="cold-start trials per function (median)")
    parser.add_argument("--requests", type=int, default=400, help="requests per throughput run")
    parser.add_argument("--load-trials", type=int, default=3, help="throughput trials per endpoint (median)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def emit(lines: list[str]) -> None:
    print("\n".join(lines), flush=True)


def misses(result: dict[str, Any]) -> list[str]:
    """Names of every target missed or call that answered wrongly."""
    out = []
    for name, row in result["coldstart"]["functions"].items():
        if row["target_ratio"] is not None and not row["ratio"] <= row["target_ratio"]:
            out.append(f"cold start {name} {row['ratio']:.2f}x > {row['target_ratio']}x")
        if row["bad_statuses"]:
            out.append(f"cold start {name} answered {row['bad_statuses']}")
    for name, row in result["roundtrips"].items():
        if row["requests"] > row["target_requests"] or row["status"] != row["expected_status"]:
            out.append(f"round trips {name}: {row['requests']} > {row['target_requests']} or HTTP {row['status']}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    result: dict[str, Any] = {
        "meta": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "args": vars(args),
        }
    }
    with tempfile.TemporaryDirectory(prefix="sorastudio-bench-") as tmp:
        stack = start_stack(Path(tmp) / "cloud")
        try:
            bundle = coldstart.make_bundle(Path(tmp) / "bundle")
            result["coldstart"] = coldstart.measure(stack, bundle, args.trials)
            emit(coldstart.report(result["coldstart"]))
            result["importtime"] = coldstart.import_breakdown(stack, bundle)
            emit(coldstart.report_imports(result["importtime"]))
            result["throughput"] = throughput.measure(stack, args.requests, args.load_trials)
            emit(throughput.report(result["throughput"]))
            # After the load runs the bench user owns hundreds of tasks, so a filtered list
            # that finds nothing shows its worst case.
            result["roundtrips"] = roundtrips.measure(stack)
            emit(roundtrips.report(result["roundtrips"]))
        finally:
            stop_stack(stack)
    result["meta"]["elapsed_s"] = time.perf_counter() - began
    missed = misses(result)
    result["misses"] = missed
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    emit([f"targets missed: {len(missed)}" + "".join(f"\n  - {m}" for m in missed),
          f"done in {result['meta']['elapsed_s']:.0f} s; results in {RESULTS.relative_to(Path.cwd())}"
          if RESULTS.is_relative_to(Path.cwd()) else f"results in {RESULTS}"])
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())

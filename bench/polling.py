"""Backoff vs predictive polling: Testsigma runs of realistic, spread durations through the real ASL.

The sandbox is told the demo plan's run-duration distribution (lognormal around a median, a share of
outliers from a fifth to three times as long); the local runtime runs in simulated time, so a
30-minute run takes `1800 * time_scale` seconds and every Wait timestamp, deadline and run keeps
proportion. A warm-up fleet (backoff) writes the plan's history, as the first runs of a plan do; then
`--runs` jobs of each mode arrive interleaved over the same stretch of time against the same
distribution, and each execution's history gives its looks (PollStatus entries), state transitions
and detection lag (from the run's end, as the sandbox ran it, to the look that saw it).

Simulated time magnifies the handlers' own time (a 20 ms look is 4 simulated seconds at 1/200):
lags include it, for both modes alike.

Run: .venv/bin/python bench/polling.py [--runs 100] [--time-scale 0.005] [--sigma 0.1] [--outliers 0.05]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _simulated_runs import Execution, demo_job, mean, quantile, run_fleet

from testrelay_local.runtime import LocalRuntime
from testrelay_local.sandbox import DEMO_PLAN_ID

TRANSITION_PRICE = 0.025 / 1000  # Step Functions Standard, us-east-1 (see bench/cost.py)


def _row(mode: str, runs: list[Execution]) -> list[str]:
    looks = [r.looks for r in runs]
    lags = [r.lag_share for r in runs if not math.isnan(r.lag)]
    typical = [r.lag_share for r in runs if not math.isnan(r.lag) and r.duration >= 0.8 * 1800]
    # A run seen by the first look ended before it: no ladder below the history's range sees it sooner.
    at_first_look = [r.lag_share for r in runs if not math.isnan(r.lag) and r.looks == 1]
    transitions = [r.transitions for r in runs]
    return [
        mode,
        str(len(runs)),
        f"{sum(r.status == 'SUCCEEDED' for r in runs)}",
        f"{mean(looks):.2f}",
        f"{quantile(looks, 0.5):.0f} / {quantile(looks, 0.95):.0f} / {max(looks)}",
        f"{100 * mean(lags):.1f} %",
        f"{100 * quantile(lags, 0.9):.1f} / {100 * quantile(lags, 0.95):.1f} %",
        f"{_share_over(lags, 0.1):.0f} % ({_share_over(typical, 0.1):.0f} %)",
        f"{100 * sum(lag > 0.1 for lag in at_first_look) / max(1, len(lags)):.0f} %",
        f"{mean([r.polling_transitions for r in runs]):.1f}",
        f"{mean(transitions):.1f}",
        f"${1000 * TRANSITION_PRICE * mean(transitions):.3f}",
    ]


def _share_over(values: list[float], limit: float) -> float:
    return 100 * sum(value > limit for value in values) / max(1, len(values))


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100, help="jobs per mode (default 100)")
    parser.add_argument("--warmup", type=int, default=20, help="backoff jobs run first to write the plan's history")
    parser.add_argument("--median", type=float, default=1800.0, help="median run duration, simulated seconds")
    parser.add_argument("--sigma", type=float, default=0.1, help="lognormal shape of run durations")
    parser.add_argument("--outliers", type=float, default=0.05, help="share of runs 0.2x-3x the median")
    parser.add_argument("--time-scale", type=float, default=0.005, help="wall seconds per simulated second")
    parser.add_argument("--spread-hours", type=float, default=4.0, help="simulated hours the jobs arrive over")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    started = time.monotonic()
    distribution = {
        "median_seconds": args.median,
        "sigma": args.sigma,
        "outlier_share": args.outliers,
        "outlier_factors": [0.2, 3.0],
        "seed": args.seed,
    }
    # No targets: the write-back is the same for both modes and paced by the vendors' real-time budgets.
    with LocalRuntime(time_scale=args.time_scale, simulated_time=True, sandbox_run_duration=args.median) as runtime:
        assert runtime.sandbox is not None
        runtime.sandbox.set_run_durations({DEMO_PLAN_ID: distribution})
        progress = _progress()
        warmup = [("backoff", demo_job({"mode": "backoff"}, targets=[])) for _ in range(args.warmup)]
        run_fleet(runtime, warmup, spread_seconds=args.spread_hours * 3600 / 4, on_progress=progress)
        fleet = [
            (mode, demo_job({"mode": mode}, targets=[])) for _ in range(args.runs) for mode in ("backoff", "predictive")
        ]
        measured = run_fleet(runtime, fleet, spread_seconds=args.spread_hours * 3600, on_progress=progress)
    print(file=sys.stderr)
    by_mode = {mode: [e for e in measured if e.mode == mode] for mode in ("backoff", "predictive")}
    durations = [e.duration for e in measured]
    print(
        f"runs: {args.runs} per mode after {args.warmup} warm-up runs; durations lognormal around "
        f"{args.median / 60:.0f} min (sigma {args.sigma}, {100 * args.outliers:.0f} % outliers 0.2x-3x): "
        f"p5 {quantile(durations, 0.05) / 60:.1f} min, p50 {quantile(durations, 0.5) / 60:.1f}, "
        f"p95 {quantile(durations, 0.95) / 60:.1f}, max {max(durations) / 60:.1f}; time scale {args.time_scale} "
        f"(a 30-minute run in {1800 * args.time_scale:.1f} s)"
    )
    header = [
        "mode",
        "runs",
        "ok",
        "looks",
        "looks p50/p95/max",
        "lag mean",
        "lag p90/p95",
        "lag > 10 % (runs >= 0.8x median)",
        "of runs: > 10 % late at the first look",
        "polling transitions",
        "transitions",
        "transitions $/1000 runs",
    ]
    print(_table(header, [_row(mode, runs) for mode, runs in by_mode.items()]))
    backoff, predictive = by_mode["backoff"], by_mode["predictive"]
    print(
        f"predictive / backoff: looks {mean([e.looks for e in predictive]) / mean([e.looks for e in backoff]):.2f}, "
        f"transitions {mean([e.transitions for e in predictive]) / mean([e.transitions for e in backoff]):.2f}, "
        f"mean lag {mean([e.lag_share for e in predictive]) / mean([e.lag_share for e in backoff]):.2f}"
    )
    late = sorted((e for e in predictive if e.lag_share > 0.1), key=lambda e: e.duration)
    print(
        "predictive runs seen > 10 % late (duration / median: lag, * = at the first look): "
        + (
            ", ".join(f"{e.duration / args.median:.2f}x: {100 * e.lag_share:.1f} %{'*' * (e.looks == 1)}" for e in late)
            or "none"
        )
    )
    print(f"wall time {time.monotonic() - started:.0f} s")
    return 0


def _progress() -> Callable[[str], None]:
    last = [0.0]

    def emit(line: str) -> None:
        if time.monotonic() - last[0] > 5:
            last[0] = time.monotonic()
            print(f"  {line}", file=sys.stderr, flush=True)

    return emit


if __name__ == "__main__":
    raise SystemExit(main())

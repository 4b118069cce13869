"""JUnit parse speed: the relay's parser against a bare stdlib pass and trcli's parser, in one run.

A report of `--cases` test cases (default 100,000, about 18 MB: suites of 100 cases, one in 20 failing
with a message and a stack trace, one in 10 skipped, one in 4 declaring a `test_case_id` property, one
in 50 with `<system-out>`) is written to a temporary file, then read
- by `testrelay.junit.parse_report` (every case's JunitCase made and consumed, as the report intake does
  when it counts a report's cases), and again with each case's stored form made (`JunitCase.stored()`, the
  JSON-ready dict collection writes to S3 for every case);
- by a bare `xml.etree.ElementTree.iterparse` pass (start and end events, each element cleared once
  read: the least any streaming stdlib reader does, the limit for pure Python);
- by trcli's `JunitParser.parse_file` (trcli 1.15.3, a bench-only dependency from bench/requirements.txt
  in its own venv, .venv-bench: `make bench-venv`, or made by this script when missing).
Each is timed in CPU seconds of its process (`time.process_time`: on a shared machine wall time
measures the neighbours), best of `--repeat`, the relay's and iterparse's passes taking turns so that a
neighbour's burst weighs on both alike; the relay's streaming memory is the peak traced allocation while it
parses (tracemalloc, a separate pass so tracing does not slow the timed ones).

Run: .venv/bin/python bench/junit_parse.py [--cases 100000] [--repeat 3] [--no-trcli]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from testrelay.junit import parse_report

ROOT = Path(__file__).resolve().parents[1]
BENCH_VENV = ROOT / ".venv-bench"
SUITE_SIZE = 100


def write_report(path: Path, cases: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="bench">\n')
        for start in range(0, cases, SUITE_SIZE):
            suite = f"com.acme.shop.module{start // SUITE_SIZE}.CheckoutServiceTest"
            out.write(f'  <testsuite name="{suite}" tests="{SUITE_SIZE}" time="1.5">\n')
            for n in range(start, min(cases, start + SUITE_SIZE)):
                head = f'    <testcase classname="{suite}" name="test_checkout_{n}_applies_discount" time="0.0{n % 97}"'
                body = []
                if n % 4 == 0:
                    body.append(f'<properties><property name="test_case_id" value="TC-{n}"/></properties>')
                if n % 20 == 1:
                    body.append(
                        '<failure message="expected 10 but was 9" type="AssertionError">'
                        f"AssertionError: expected 10 but was 9\n  at {suite}.test({n})</failure>"
                    )
                elif n % 10 == 3:
                    body.append('<skipped message="flaky"/>')
                if n % 50 == 7:
                    body.append(f"<system-out>checkout {n}: cart total 9.00</system-out>")
                out.write(f"{head}>{''.join(body)}</testcase>\n" if body else f"{head}/>\n")
            out.write("  </testsuite>\n")
        out.write("</testsuites>\n")


def relay_pass(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for _ in parse_report(stream))


def relay_stored_pass(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for case in parse_report(stream) if case.stored())


def iterparse_pass(path: Path) -> int:
    count = 0
    # The report is the one this script wrote.
    for event, element in ET.iterparse(path, events=("start", "end")):  # noqa: S314
        if event == "end":
            count += element.tag == "testcase"
            element.clear()
    return count


def best_of(repeat: int, *passes: Callable[[], int]) -> list[tuple[float, int]]:
    """Each pass's best CPU time and result over `repeat` rounds, the passes run in turn within a round."""
    best = [(float("inf"), 0) for _ in passes]
    for _ in range(repeat):
        for index, work in enumerate(passes):
            began = time.process_time()
            result = work()
            best[index] = (min(best[index][0], time.process_time() - began), result)
    return best


def bench_python() -> Path | None:
    """.venv-bench's interpreter with trcli, made from bench/requirements.txt when missing."""
    python = BENCH_VENV / "bin" / "python"
    if not (BENCH_VENV / ".installed").exists():
        try:
            # Our own interpreter and the project's pinned requirement file: nothing untrusted.
            subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)  # noqa: S603
            pip = [str(python), "-m", "pip", "install", "--quiet", "-r", str(ROOT / "bench" / "requirements.txt")]
            subprocess.run(pip, check=True)  # noqa: S603
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"trcli could not be installed ({exc}): its column is left out", file=sys.stderr)
            return None
        (BENCH_VENV / ".installed").touch()
    return python


def trcli_pass(path: Path, repeat: int) -> tuple[float, int] | None:
    python = bench_python()
    if python is None:
        return None
    script = ROOT / "bench" / "_trcli_parse.py"
    done = subprocess.run(  # noqa: S603
        [str(python), str(script), str(path), "--repeat", str(repeat)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(f"trcli's parser failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return float(answer["seconds"]), int(answer["cases"])


def streaming_peak(path: Path) -> float:
    tracemalloc.start()
    relay_pass(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-trcli", action="store_true", help="leave trcli's parser out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "report.xml"
        write_report(path, args.cases)
        size = path.stat().st_size / 2**20
        (relay, relay_cases), (stored, _), (bare, bare_cases) = best_of(
            args.repeat, lambda: relay_pass(path), lambda: relay_stored_pass(path), lambda: iterparse_pass(path)
        )
        trcli = None if args.no_trcli else trcli_pass(path, args.repeat)
        peak = streaming_peak(path)
    print(f"report: {args.cases:,} cases, {size:.1f} MiB; best of {args.repeat}")
    print(f"  relay parse_report      {relay:7.3f} s  ({relay_cases:,} results)")
    print(f"  relay + stored form     {stored:7.3f} s  (what collection writes per case)")
    print(f"  bare stdlib iterparse   {bare:7.3f} s  ({bare_cases:,} cases)")
    if trcli is not None:
        print(f"  trcli JunitParser       {trcli[0]:7.3f} s  ({trcli[1]:,} cases)")
    print(f"  relay / iterparse       {relay / bare:7.2f} x  (goal <= 1.5)")
    if trcli is not None:
        print(f"  trcli / relay           {trcli[0] / relay:7.1f} x faster  (goal >= 12)")
    print(f"  relay streaming memory  {peak:7.2f} MiB peak traced")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

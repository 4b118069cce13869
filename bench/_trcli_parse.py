"""Times trcli's JUnit parser on one report; run under .venv-bench (trcli is a bench-only dependency).

Prints one JSON line: {"seconds": <best of --repeat>, "cases": <cases trcli read>}.
"""

from __future__ import annotations

import argparse
import json
import time

from trcli.cli import Environment
from trcli.readers.junit_xml import JunitParser


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("report")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = Environment("parse_junit")
    env.file = args.report
    env.case_matcher = "auto"
    env.silent = True
    best, cases = float("inf"), 0
    for _ in range(args.repeat):
        began = time.process_time()
        suites = JunitParser(env).parse_file()
        best = min(best, time.process_time() - began)
        cases = sum(len(section.testcases) for suite in suites for section in suite.testsections)
    print(json.dumps({"seconds": best, "cases": cases}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m testrelay_local.sandbox`: serve the vendor sandbox until Ctrl-C."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from testrelay_local.sandbox.sandbox import Sandbox
from testrelay_local.sandbox.seed import SandboxSeed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m testrelay_local.sandbox",
        description="Serve loopback stand-ins for Testsigma, Testsigma Test Management and GitHub statuses.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088, help="0 picks a free port")
    parser.add_argument("--seed", type=Path, metavar="FILE.json", help="seed data (default: the demo data set)")
    parser.add_argument(
        "--run-duration", type=float, default=2.0, metavar="S", help="seconds a Testsigma run takes to complete"
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    seed = None
    if args.seed:
        try:
            seed = SandboxSeed.model_validate_json(args.seed.read_text())
        except (OSError, ValidationError) as exc:
            parser.error(f"cannot load the seed {args.seed}: {exc}")
    sandbox = Sandbox(seed, run_duration=args.run_duration, host=args.host, port=args.port)
    sandbox.log_requests = not args.quiet
    base = sandbox.start()
    print(f"vendor sandbox at {base}", flush=True)
    print(f"  testsigma     {sandbox.testsigma_url}", flush=True)
    print(f"  testsigma-tm  {sandbox.testsigma_tm_url}", flush=True)
    print(f"  browserstack  {sandbox.browserstack_tm_url}", flush=True)
    print(f"  github        {sandbox.github_url}", flush=True)
    print(f"  gitlab        {sandbox.gitlab_url}", flush=True)
    print(f"  bitbucket     {sandbox.bitbucket_url}", flush=True)
    print(f"  state         {base}/_sandbox/state   (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

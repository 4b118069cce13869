"""The operator CLI as a CI runner gets it: `pip install . ./cli` into a fresh virtual environment (no
site packages, nothing but what the two projects declare), then `testrelay` against the local relay.

Only the core and the CLI are copied from the checkout, so the CLI cannot lean on the local runtime,
the handlers or anything else a runner would not install. pip answers from its ordinary configuration
(PyPI on a runner); the test's own pip drives the install (`pip --python`), which spares the fresh
environment an ensurepip, and skips byte-compiling: neither changes what gets installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testrelay_cli.stack_target import write_local_state
from testrelay_local.runtime import LocalRuntime
from tests.support import EVENTS, ROOT, tm_run_cases, wait_for_execution

pytestmark = pytest.mark.slow

ROUTES_FILE = Path(__file__).parent / "junit_routes.yaml"
ROUTE = "junit-checkout"
# What of a checkout the two projects are built from.
CHECKOUT = ["pyproject.toml", "README.md", "layers/core/requirements.txt", "layers/core/testrelay", "cli"]


def _copy_checkout(to: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for part in CHECKOUT:
        source, target = ROOT / part, to / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)
    return to


@pytest.fixture(scope="module")
def runner_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a fresh environment holding only what `pip install . ./cli` brings."""
    base = tmp_path_factory.mktemp("runner")
    checkout = _copy_checkout(base / "checkout")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # noqa: S603
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile"]
    installed = subprocess.run(  # noqa: S603
        [*pip, str(checkout), str(checkout / "cli")], capture_output=True, text=True, timeout=900, check=False
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv / "bin"


def _run(runner_bin: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A runner's environment: no PYTHONPATH, no virtualenv of the checkout, no AWS settings.
    clean = {"PATH": f"{runner_bin}{os.pathsep}/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(  # noqa: S603
        [str(runner_bin / "testrelay"), *argv],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=120,
        check=False,
    )


def test_the_installed_cli_has_the_operator_commands_only(runner_bin: Path) -> None:
    # Given the CLI installed on a bare runner
    # When its help is asked for
    helped = _run(runner_bin, "--help")
    # Then it lists the operator commands, and none of the local runtime's
    assert helped.returncode == 0, helped.stderr
    commands = helped.stdout.split("{", 1)[1].split("}", 1)[0].split(",")
    assert {"jobs", "job", "retry", "resync", "redrive", "push-junit", "doctor", "routes"} <= set(commands)
    assert not {"local", "demo", "send"} & set(commands)
    # And the local runtime's own package is not there to lean on
    assert not list((runner_bin.parent / "lib").glob("python*/site-packages/testrelay_local"))
    # And a command needing the sandbox says in one line what to do instead
    sandboxed = _run(runner_bin, "doctor", "--vendors", "sandbox", "--routes", str(ROOT / "config" / "routes.yaml"))
    assert sandboxed.returncode == 2
    assert "use --vendors real" in sandboxed.stderr
    assert "Traceback" not in sandboxed.stderr


def test_the_installed_cli_pushes_a_report_to_the_local_relay(
    runner_bin: Path, runtime: LocalRuntime, tmp_path: Path
) -> None:
    # Given the local relay running (found through its state file, as `testrelay local` writes it)
    state = tmp_path / "local.json"
    write_local_state(runtime.aws.endpoint_url, runtime.outputs, runtime.webhook_url("github"), path=state)
    env = {"TESTRELAY_LOCAL_STATE": str(state)}
    report = EVENTS / "junit" / "pytest.xml"
    # When the runner's CLI pushes pytest's report
    argv = ["push-junit", str(report), "--route", ROUTE, "--repository", "acme/shop", "--json"]
    pushed = _run(runner_bin, *argv, env=env)
    # Then the relay accepts it and its job writes the cases to Test Management
    assert pushed.returncode == 0, pushed.stderr
    answer = json.loads(pushed.stdout)
    [job_id] = answer["jobs"]
    assert answer["cases"] == 4
    assert wait_for_execution(runtime, job_id)["status"] == "SUCCEEDED"
    [tm_run] = tm_run_cases(runtime).values()
    assert len(tm_run["test_run_cases"]) == 5
    # And the same CLI reads the job back from the ledger (boto3 against the relay's AWS)
    shown = _run(runner_bin, "job", job_id, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "reported"

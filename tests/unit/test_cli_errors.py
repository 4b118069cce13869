"""The operator CLI on bad input: one line saying what is wrong and what to do, a non-zero exit code,
and the same as one JSON document under --json; never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from testrelay_cli import cli
from testrelay_cli.cli import main, parser
from tests.support import ROOT

PAYLOAD = ROOT / "events" / "github" / "workflow_run.completed.payload.json"
REPORT = ROOT / "events" / "junit" / "pytest.xml"


@pytest.fixture(autouse=True)
def state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test starts with no `testrelay local` to find, whatever runs on this machine."""
    state = tmp_path / "local.json"
    monkeypatch.setenv("TESTRELAY_LOCAL_STATE", str(state))
    return state


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def json_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Runs with --json; asserts stdout is exactly one JSON document with an error, and no traceback."""
    code, out, err = run(capsys, *argv, "--json")
    assert code != 0
    document = json.loads(out)
    assert isinstance(document["error"], str)
    assert "\n" not in document["error"]
    assert "Traceback" not in err
    return code, document["error"]


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code, out, err = run(capsys, *argv)
    assert code != 0
    assert out == ""
    assert err.startswith("testrelay: "), err
    assert err.count("\n") == 1, err
    return code, err.removeprefix("testrelay: ").strip()


def test_a_missing_file_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.json")
    for argv in (
        ["send", missing, "--url", "http://127.0.0.1:9/webhooks/github", "--secret", "s"],
        ["push-junit", missing, "--route", "octo-checkout", "--url", "http://127.0.0.1:9", "--secret", "s"],
        ["demo", "--payload", missing],
        ["schedules", "sync", "--template", missing],
    ):
        code, message = one_line_error(capsys, *argv)
        assert (code, message) == (2, f"{missing}: no such file; check the path")
        assert json_error(capsys, *argv) == (2, message)
    _, message = one_line_error(capsys, "routes", "check", missing)
    assert message == f"routes file {missing} cannot be read: No such file or directory"


def test_a_report_path_that_is_a_directory_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["push-junit", str(tmp_path), "--route", "octo-checkout", "--url", "http://127.0.0.1:9", "--secret", "s"]
    assert one_line_error(capsys, *argv) == (2, f"{tmp_path}: is a directory; give the path of a file inside it")
    assert json_error(capsys, "routes", "check", str(tmp_path))[1].endswith(
        "is a directory; give the path of a file inside it"
    )


def test_an_unreadable_report_says_permission_denied(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (chmod cannot make a file unreadable to root, who runs these tests in CI containers)
    report = tmp_path / "junit.xml"
    report.write_text("<testsuite/>")
    real_open = Path.open

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == report:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    argv = ["push-junit", str(report), "--route", "octo-checkout", "--url", "http://127.0.0.1:9", "--secret", "s"]
    _, message = one_line_error(capsys, *argv)
    assert message == f"{report}: permission denied; make it readable (chmod) or run as its owner"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_relay_that_refuses_connections_is_named_with_its_url(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/webhooks/github"
    code, message = one_line_error(capsys, "send", str(PAYLOAD), "--url", url, "--secret", "s")
    assert (code, message) == (2, f"cannot connect to {url}: is the relay running there? check --url")
    _, message = json_error(capsys, "send", str(PAYLOAD), "--url", "localhost:8080", "--secret", "s")
    assert "give a full URL such as http://127.0.0.1:8080/webhooks/github" in message


def teststate_file_says_how_to_start_one(capsys: pytest.CaptureFixture[str], state_file: Path) -> None:
    for argv in (
        ["jobs"],
        ["job", "x"],
        ["redrive"],
        ["schedule", "fire", "nightly-checkout"],
        ["push-junit", str(REPORT), "--route", "r"],
    ):
        code, message = json_error(capsys, *argv)
        assert code == 2
        assert message == (
            f"no local runtime is running (no {state_file}): "
            "start it with `testrelay local`, or name a deployed stack with --stack"
        )


def _write_state(path: Path, **fields: Any) -> None:
    path.write_text(json.dumps({"endpoint_url": f"http://127.0.0.1:{_closed_port()}", "outputs": {}, **fields}))


def test_a_stale_local_state_file_is_told_apart(capsys: pytest.CaptureFixture[str], state_file: Path) -> None:
    # Given the state file of a `testrelay local` whose process has gone (killed, not stopped with Ctrl-C)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _write_state(state_file, pid=gone.pid, webhook_url="http://127.0.0.1:1/webhooks/github")
    # Then every command that needs it says the file is stale, and what to do
    for argv in (["jobs"], ["push-junit", str(REPORT), "--route", "r"]):
        _, message = json_error(capsys, *argv)
        assert message.startswith(f"stale {state_file}: its runtime (pid {gone.pid}) has stopped; delete the file")


def test_a_local_runtime_that_does_not_answer_or_a_corrupt_state_file(
    capsys: pytest.CaptureFixture[str], state_file: Path
) -> None:
    _write_state(state_file, pid=os.getpid())
    _, message = one_line_error(capsys, "jobs")
    assert "does not answer (connection refused): start it with `testrelay local`" in message
    state_file.write_text("{half a file")
    _, message = one_line_error(capsys, "jobs")
    assert message.startswith(f"{state_file} is not a local runtime's state file: delete it")


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """The deployed stack's CloudFormation, answering what the test stubs."""
    client = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b")
    real = boto3.client

    def clients(service: str, **options: Any) -> Any:
        return client if service == "cloudformation" else real(service, **options)

    monkeypatch.setattr("testrelay_cli.stack_target.boto3.client", clients)
    with Stubber(client) as stubber:
        yield stubber


@pytest.mark.parametrize(
    ("code", "aws_message", "said"),
    [
        (
            "ExpiredToken",
            "The security token included in the request is expired",
            "your AWS credentials have expired: refresh them (e.g. `aws sso login`) and try again",
        ),
        (
            "InvalidClientTokenId",
            "The security token included in the request is invalid",
            "AWS does not accept your credentials: check AWS_PROFILE or the access key in use",
        ),
        (
            "AccessDenied",
            "User x is not authorized to perform cloudformation:DescribeStacks",
            "AWS denied "
            "DescribeStacks: your credentials lack the permission (User x is not authorized to perform "
            "cloudformation:DescribeStacks)",
        ),
    ],
)
def test_aws_credential_problems_say_what_to_do(
    capsys: pytest.CaptureFixture[str], cloudformation: Stubber, code: str, aws_message: str, said: str
) -> None:
    cloudformation.add_client_error("describe_stacks", code, aws_message)
    assert json_error(capsys, "jobs", "--stack", "testrelay", "--region", "eu-west-1") == (2, said)


def test_a_stack_without_the_outputs_the_cli_needs(capsys: pytest.CaptureFixture[str], cloudformation: Stubber) -> None:
    created = "2026-01-01T00:00:00Z"
    stack = {"StackName": "testrelay", "CreationTime": created, "StackStatus": "CREATE_COMPLETE", "Outputs": []}
    cloudformation.add_response("describe_stacks", {"Stacks": [stack]})
    assert one_line_error(capsys, "jobs", "--stack", "testrelay", "--region", "eu-west-1") == (
        2,
        "stack testrelay has no output 'LedgerTableName': deploy the current template (`sam deploy`)",
    )


def test_a_stack_that_does_not_exist_in_the_region(capsys: pytest.CaptureFixture[str], cloudformation: Stubber) -> None:
    cloudformation.add_client_error("describe_stacks", "ValidationError", "Stack with id testrelay does not exist")
    _, message = one_line_error(capsys, "job", "x", "--stack", "testrelay", "--region", "eu-west-1")
    assert message == "Stack with id testrelay does not exist: check --stack and --region (a stack lives in one region)"


def test_no_aws_credentials_at_all(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, message = json_error(
        capsys, "resync", "1", "--route", "octo-checkout", "--stack", "testrelay", "--region", "eu-west-1"
    )
    assert code == 2
    assert message == "no AWS credentials found: set AWS_PROFILE, run `aws configure` or `aws sso login`, then retry"


def test_an_unknown_route_for_resync_lists_the_routes(capsys: pytest.CaptureFixture[str]) -> None:
    _, message = json_error(capsys, "resync", "1", "--route", "nope")
    assert message.startswith("no route 'nope' in ")
    assert message.endswith("(routes: octo-checkout); check --route")


def test_a_template_without_the_schedules_block(capsys: pytest.CaptureFixture[str]) -> None:
    _, message = one_line_error(capsys, "schedules", "sync", "--template", str(ROOT / "README.md"))
    assert message.startswith("the template has no '# BEGIN schedules:' ... '# END schedules' block")


def test_a_command_line_argparse_refuses_is_answered_in_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert json_error(capsys, "job") == (
        2,
        "job: the following arguments are required: job_id (see `testrelay job --help`)",
    )
    assert json_error(capsys, "jobs", "--limit", "many")[1].startswith(
        "jobs: argument --limit: invalid positive int value"
    )


def test_an_unexpected_exception_is_one_line_unless_debugging(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("the ledger answered nonsense")

    monkeypatch.setattr(cli, "cmd_routes_check", broken)
    code, message = one_line_error(capsys, "routes", "check")
    assert (code, message) == (
        3,
        "internal error: RuntimeError: the ledger answered nonsense (run with --debug for the traceback)",
    )
    assert json_error(capsys, "routes", "check")[0] == 3
    code, _, err = run(capsys, "routes", "check", "--debug")
    assert code == 3
    assert "Traceback (most recent call last)" in err
    assert 'raise RuntimeError("the ledger' in err


def test_ctrl_c_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_routes_check", interrupted)
    assert one_line_error(capsys, "routes", "check") == (130, "interrupted")


def _leaf_commands(top: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    actions = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        yield prefix
    for action in actions:
        for name, child in action.choices.items():
            yield from _leaf_commands(child, (*prefix, name))


# A bad input a user could give each command (no relay runs: the autouse fixture sees to it).
BAD_INPUT = {
    ("local",): ["--routes", "/nope/routes.yaml"],
    ("demo",): ["--payload", "/nope/payload.json"],
    ("send",): ["/nope/event.json", "--url", "http://127.0.0.1:9", "--secret", "s"],
    ("jobs",): [],
    ("job",): ["some-job"],
    ("resync",): ["4711", "--route", "octo-checkout"],
    ("redrive",): ["--dry-run"],
    ("push-junit",): ["/nope/junit.xml", "--route", "octo-checkout"],
    ("schedule", "fire"): ["nightly-checkout"],
    ("schedules", "sync"): ["--routes", "/nope/routes.yaml"],
    ("routes", "check"): ["/nope/routes.yaml"],
    ("doctor",): ["--routes", "/nope/routes.yaml"],
}


def test_every_command_answers_bad_input_with_one_json_error(capsys: pytest.CaptureFixture[str]) -> None:
    commands = list(_leaf_commands(parser()))
    assert set(BAD_INPUT) <= set(commands)
    for command in commands:
        # an option no command has, then (where known) a bad input of the command's own kind
        json_error(capsys, *command, "--no-such-option")
        if command in BAD_INPUT:
            json_error(capsys, *command, *BAD_INPUT[command])


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    testrelay = Path(sys.executable).parent / "testrelay"
    env = {**os.environ, "TESTRELAY_LOCAL_STATE": str(tmp_path / "none.json")}
    for argv in (["job", "x", "--json"], ["send", "/nope", "--url", "u", "--secret", "s", "--json"]):
        # the project's own entry point, with fixed arguments
        done = subprocess.run([str(testrelay), *argv], capture_output=True, text=True, env=env, timeout=60)  # noqa: S603
        assert done.returncode == 2
        assert "error" in json.loads(done.stdout)
        assert done.stderr == ""


def test_real_vendors_without_their_keys_say_which(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TESTSIGMA_API_KEY", raising=False)
    for command in ("local", "demo"):
        code, message = json_error(capsys, command, "--vendors", "real")
        assert code == 2
        assert message.startswith("real vendors need at least TESTSIGMA_API_KEY")
        assert message.endswith(": export them, or use --vendors sandbox")


def test_a_limit_below_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert json_error(capsys, "jobs", "--limit", "0") == (
        2,
        "jobs: argument --limit: invalid positive int value: '0' (see `testrelay jobs --help`)",
    )

"""How an installed CLI finds the running `testrelay local`: TESTRELAY_LOCAL_STATE, else the
`.testrelay/local.json` the runtime writes at its checkout's root, looked for from the working
directory upwards (the CLI may be installed anywhere; the command is run inside the checkout)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from testrelay_cli.cli_errors import CliError
from testrelay_cli.stack_target import local_state_file, read_local_state, write_local_state


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("TESTRELAY_LOCAL_STATE", raising=False)
    (tmp_path / "services" / "web").mkdir(parents=True)
    return tmp_path


def test_a_command_deep_in_the_checkout_finds_the_runtimes_state(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the local runtime's state written at the checkout's root, as `testrelay local` writes it
    written = local_state_file(checkout)
    write_local_state(
        "http://127.0.0.1:4566", {"LedgerTableName": "t"}, "http://127.0.0.1:8080/webhooks/github", written
    )
    assert written == checkout / ".testrelay" / "local.json"
    # When a command runs in a directory below the root
    monkeypatch.chdir(checkout / "services" / "web")
    # Then it finds that file
    assert local_state_file() == written
    assert json.loads(local_state_file().read_text())["pid"] == os.getpid()


def test_outside_any_checkout_it_says_where_it_looked(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(checkout / "services")
    with pytest.raises(CliError) as raised:
        read_local_state()
    assert str(raised.value) == (
        f"no local runtime is running (no .testrelay/local.json in {checkout / 'services'} or a parent directory): "
        "start it with `testrelay local`, or name a deployed stack with --stack"
    )


def test_the_environment_names_the_file_for_both_sides(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    monkeypatch.setenv("TESTRELAY_LOCAL_STATE", str(elsewhere))
    assert local_state_file(checkout) == elsewhere
    assert local_state_file() == elsewhere

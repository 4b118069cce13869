"""The routes index: what the webhook matches with and copies into jobs, without validating the routes
file at cold start; and the fallback that keeps it correct when the index is missing or stale."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testrelay import routes_index, routing
from testrelay.errors import ConfigurationError
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job
from testrelay.models.job_message import job_message
from testrelay.route_matching import match_routes
from testrelay.routes_index import _cache, index_path, load_indexed_routes
from testrelay.routing import parse_routes, write_index
from testrelay_cli.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXTRA_ROUTE = """
  - name: tagged-nightly
    match:
      {providers: [gitlab, github], pipelines: ["nightly*"], tags: ["v*"], outcomes: [success, failure], forks: true}
    testsigma: {test_plan_id: 77}
"""


@pytest.fixture
def warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(routes_index.logger, "warning", lambda message, **keys: seen.append(message))
    return seen


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    _cache.clear()
    file = tmp_path / "routes.yaml"
    shutil.copy(ROOT / "config" / "routes.yaml", file)
    return file


def _add_route(file: Path) -> None:
    text = file.read_text()
    head, schedules = text.split("\nschedules:", 1) if "\nschedules:" in text else (text, None)
    file.write_text(head.rstrip() + "\n" + EXTRA_ROUTE + ("\nschedules:" + schedules if schedules else ""))


def _never_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the routes file was validated although its index is current")

    monkeypatch.setattr(routing, "parse_routes", refuse)


def test_a_current_index_is_read_without_validating_the_routes_file(
    routes_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a routes file and the index `testrelay routes index` wrote for it
    write_index(routes_file)
    config = parse_routes(routes_file.read_text())
    _never_validate(monkeypatch)
    # When the webhook loads its routes
    routes = load_indexed_routes(routes_file)
    # Then they are the file's routes, with each route's action as the job carries it
    assert [route.name for route in routes] == [route.name for route in config.routes]
    assert [route.action for route in routes] == [route.action().model_dump(mode="json") for route in config.routes]


def test_a_stale_index_is_never_used(routes_file: Path, warnings: list[str]) -> None:
    # Given an index written before the routes file gained a route
    write_index(routes_file)
    _add_route(routes_file)
    # When the webhook loads its routes
    routes = load_indexed_routes(routes_file)
    # Then the file as it is now counts, and the log says the index was stale
    assert "tagged-nightly" in [route.name for route in routes]
    assert [message for message in warnings if "routes index stale" in message]


def test_a_stale_index_does_not_hide_an_invalid_routes_file(routes_file: Path) -> None:
    write_index(routes_file)
    routes_file.write_text(routes_file.read_text() + "\n  - name: broken\n")
    with pytest.raises(ConfigurationError):
        load_indexed_routes(routes_file)


@pytest.mark.parametrize(
    "index",
    ["", "not json", "[]", '{"format": 99}', "{}", None],
    ids=["empty", "not-json", "a-list", "other-format", "no-digest", "missing"],
)
def test_an_unusable_index_falls_back_to_the_routes_file(
    routes_file: Path, index: str | None, warnings: list[str]
) -> None:
    if index is not None:
        index_path(routes_file).write_text(index)
    routes = load_indexed_routes(routes_file)
    assert [route.name for route in routes] == [route.name for route in parse_routes(routes_file.read_text()).routes]
    assert len(warnings) == 1
    assert "routes file validated at cold start" in warnings[0]


def test_a_malformed_index_with_the_right_digest_falls_back(routes_file: Path) -> None:
    # Given an index of these bytes whose routes were damaged by hand
    document = json.loads(write_index(routes_file).read_text())
    del document["routes"][0]["match"]
    index_path(routes_file).write_text(json.dumps(document))
    # Then the routes file is validated instead, and nothing is lost
    assert len(load_indexed_routes(routes_file)) == len(parse_routes(routes_file.read_text()).routes)


def test_routes_index_command_writes_the_index(routes_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "index", str(routes_file), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["index"] == str(index_path(routes_file))
    assert json.loads(index_path(routes_file).read_text())["routes"]


def test_routes_index_of_an_invalid_file_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "routes.yaml"
    broken.write_text("routes: [{name: x}]\n")
    assert main(["routes", "index", str(broken)]) != 0
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "is invalid" in err
    assert not index_path(broken).exists()


EVENTS = st.builds(
    CiEvent,
    provider=st.sampled_from(["github", "gitlab", "jenkins", "generic"]),
    event=st.sampled_from(["workflow_run", "pipeline", "build"]),
    delivery_key=st.text(min_size=1, max_size=8),
    repository=st.sampled_from(["octo-org/octo-repo", "octo-org/other", "group/project"]),
    branch=st.one_of(st.none(), st.sampled_from(["main", "master", "release/1.2", "feature/x"])),
    tag=st.one_of(st.none(), st.sampled_from(["v1.0", "nightly"])),
    fork=st.booleans(),
    child_pipeline=st.booleans(),
    pipeline_name=st.sampled_from(["", "CI", "nightly-e2e", "Build"]),
    outcome=st.one_of(st.none(), st.sampled_from(["success", "failure", "cancelled"])),
    testsigma_run_id=st.one_of(st.none(), st.integers(1, 10**6)),
)


@pytest.fixture(scope="module")
def indexed_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's routes plus one with tags, pipelines and forks, validated and indexed."""
    file = tmp_path_factory.mktemp("indexed") / "routes.yaml"
    shutil.copy(ROOT / "config" / "routes.yaml", file)
    _add_route(file)
    write_index(file)
    return file


@settings(max_examples=300, deadline=None)
@given(event=EVENTS)
def test_the_index_matches_and_makes_the_jobs_the_validated_routes_do(indexed_file: Path, event: CiEvent) -> None:
    # Given the routes file and its index
    config = parse_routes(indexed_file.read_text())
    indexed = load_indexed_routes(indexed_file)
    # When the same event is matched against both
    matched, reasons = match_routes(indexed, event)
    expected, expected_reasons = match_routes(config.routes, event)
    # Then the same routes want it, for the same reasons, and their jobs are the same
    assert [route.name for route in matched] == [route.name for route in expected]
    assert reasons == expected_reasons
    for route, model in zip(matched, expected, strict=True):
        job = Job.model_validate_json(job_message(event, route.name, route.action).body)
        assert job.model_dump(exclude={"created_at"}) == Job.for_event(event, model.action()).model_dump(
            exclude={"created_at"}
        )

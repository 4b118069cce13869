"""Case matching, status mapping, the write plan's merge rule and parts, rate pacing and the CI summary of targets."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from testrelay.errors import VendorUnavailable
from testrelay.models.execution import CaseResult, CaseStatus, RunCounts
from testrelay.models.routes import TestsigmaOverrideTarget as OverrideTarget
from testrelay.relay.report import summarise
from testrelay.relay.writers.testsigma_override import _refused, _wanted, _whole_batch_refused
from testrelay.sync import batching
from testrelay.sync.batching import merge_results
from testrelay.sync.matching import CaseCatalog, CaseMatcher, CaseMatching, TargetCase, custom_field_values, label_names
from testrelay.sync.rate_limit import RateLimiter
from testrelay.sync.status_map import relay_status

CATALOG = [
    TargetCase(id="uuid-1", key="TC-1", title="Login works", labels=("testsigma:501",)),
    TargetCase(id="uuid-2", key="TC-2", title="Cart", fields={"ts_id": ("502",)}),
    TargetCase(id="uuid-3", key="TC-3", title="Checkout"),
]


def _result(case_id: int, name: str, result: str = "SUCCESS", **extra: object) -> CaseResult:
    return CaseResult(case_id=case_id, name=name, result=result, status=relay_status(result), **extra)  # type: ignore[arg-type]


def _matcher(**config: object) -> tuple[CaseMatcher, list[int]]:
    fetched: list[int] = []
    matching = CaseMatching.model_validate(config)

    def load() -> CaseCatalog:
        fetched.append(1)
        return CaseCatalog.build(CATALOG, matching.match_by, matching.match_field)

    return CaseMatcher(matching, load), fetched


def test_each_mode_finds_its_cases_and_the_first_mode_that_finds_any_wins() -> None:
    matcher, fetched = _matcher(case_map={7: ["uuid-3", "uuid-2"]}, match_by=["case_map", "id_token", "title"])
    # An explicit map wins over a token in the name; several ids per case are kept in order
    assert matcher.match(_result(7, "[TC-1] anything")) == ["uuid-3", "uuid-2"]
    # Tokens: bracketed or bare, several per name; unknown ids are not sent
    assert matcher.match(_result(8, "[TC-1] and TC-3, TC-99")) == ["uuid-1", "uuid-3"]
    # Title: exact
    assert matcher.match(_result(9, "Checkout")) == ["uuid-3"]
    assert matcher.match(_result(9, "checkout")) == []
    # The case list was fetched once for all of it
    assert fetched == [1]


def test_a_label_or_custom_field_can_carry_the_testsigma_id() -> None:
    matcher, _ = _matcher(match_by=["field"], match_field="testsigma")
    assert matcher.match(_result(501, "whatever")) == ["uuid-1"]
    by_field, _ = _matcher(match_by=["field"], match_field="ts_id")
    assert by_field.match(_result(502, "whatever")) == ["uuid-2"]


def test_an_explicit_map_alone_never_fetches_the_case_list() -> None:
    matcher, fetched = _matcher(case_map={1: "uuid-1"}, match_by=["case_map"])
    assert matcher.match(_result(2, "[TC-2] not mapped")) == []
    assert fetched == []


def test_a_configurable_pattern_with_a_group_extracts_the_id() -> None:
    matcher, _ = _matcher(match_by=["id_token"], id_pattern=r"@id:(TC-\d+)")
    assert matcher.match(_result(1, "login @id:TC-2 TC-3")) == ["uuid-2"]
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        CaseMatching(id_pattern="(")


def test_iterations_and_machines_merge_into_one_worst_status_and_unmatched_are_listed() -> None:
    matcher, _ = _matcher(match_by=["id_token"])
    results = [
        _result(1, "[TC-1] login", "SUCCESS", iteration=1),
        _result(1, "[TC-1] login", "FAILURE", iteration=2),
        _result(2, "[TC-2] cart", "SUCCESS", machine="Chrome"),
        _result(2, "[TC-2] cart", "ABORTED", machine="Firefox"),
        _result(3, "no id at all", "FAILURE"),
    ]
    merged = merge_results(results, matcher, relay_status)
    entries = {e["case"]: e for e in merged.entries()}
    assert {case: (e["status"], e["results"]) for case, e in entries.items()} == {
        "uuid-1": ("failed", 2),
        "uuid-2": ("blocked", 2),
    }
    assert entries["uuid-2"]["description"] == "[TC-2] cart: SUCCESS on Chrome; [TC-2] cart: ABORTED on Firefox"
    assert (merged.unmatched, merged.unmatched_cases) == (1, ["3 no id at all: FAILURE"])


def test_the_results_are_read_while_the_case_list_is_fetched_and_merge_as_they_would_in_order() -> None:
    """The case list takes minutes at a vendor's pace: the results are parsed meanwhile, not after it."""
    matching = CaseMatching.model_validate({"case_map": {1: "uuid-3"}, "match_by": ["case_map", "id_token"]})
    results_read = threading.Event()
    seen_before_catalog: list[bool] = []

    def load() -> CaseCatalog:
        seen_before_catalog.append(results_read.wait(timeout=30))
        return CaseCatalog.build(CATALOG, matching.match_by, matching.match_field)

    def results() -> Iterator[CaseResult]:
        yield _result(1, "mapped, needs no list")
        yield _result(2, "[TC-1] login", "FAILURE")
        yield _result(4, "no id at all")
        yield _result(2, "[TC-1] login", "SUCCESS", iteration=2)
        yield _result(1, "mapped again", "FAILURE")
        results_read.set()

    merged = merge_results(results(), CaseMatcher(matching, load), relay_status)
    assert seen_before_catalog == [True]
    assert [(e["case"], e["status"], e["description"]) for e in merged.entries()] == [
        ("uuid-1", "failed", "[TC-1] login: FAILURE; [TC-1] login [iteration 2]: SUCCESS"),
        ("uuid-3", "failed", "mapped, needs no list: SUCCESS; mapped again: FAILURE"),
    ]
    assert merged.unmatched_cases == ["4 no id at all: SUCCESS"]


@pytest.mark.parametrize("modes", list(itertools.permutations(["case_map", "id_token", "field", "title"])))
def test_a_match_with_the_catalog_at_hand_is_the_resolution_of_a_held_look_up(modes: tuple[str, ...]) -> None:
    """The catalog loaded, results are matched mode by mode; held ones are resolved from their look-ups."""
    matcher, _ = _matcher(case_map={7: "uuid-2"}, match_by=list(modes), match_field="testsigma")
    results = [
        _result(7, "[TC-1] Checkout"),
        _result(501, "[TC-3] Cart"),
        _result(502, "Checkout"),
        _result(0, "test_login", ids=("TC-2", "501")),
        _result(9, "nothing at all"),
    ]
    assert [matcher.match(r) for r in results] == [matcher.resolve(matcher.lookup(r)) for r in results]


def test_a_case_list_that_fails_fails_the_merge() -> None:
    matching = CaseMatching.model_validate({"match_by": ["id_token"]})

    def load() -> CaseCatalog:
        raise VendorUnavailable("browserstack-tm", "503 on page 2")

    with pytest.raises(VendorUnavailable, match="page 2"):
        merge_results([_result(1, "[TC-1] login")], CaseMatcher(matching, load), relay_status)


def test_the_plan_s_parts_go_up_a_few_at_once_and_no_more_are_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """Held: entries given to store_plan whose part is not up yet, the part being filled among them.
    Each put waits for PARALLEL_PUTS of them to be under way (11 full parts and a short one: 3 rounds)."""
    at_once = threading.Barrier(batching.PARALLEL_PUTS, timeout=10)
    lock = threading.Lock()
    given = stored = most_held = 0
    indexes: list[int] = []

    def put(bucket: str, prefix: str, index: int, items: list[dict[str, object]]) -> None:
        nonlocal stored
        at_once.wait()
        time.sleep(0.01)
        with lock:
            stored += len(items)
            indexes.append(index)

    def entries() -> Iterator[dict[str, object]]:
        nonlocal given, most_held
        for case in range(11 * 3 + 1):
            with lock:
                given += 1
                most_held = max(most_held, given - stored)
            yield {"case": str(case)}

    monkeypatch.setattr(batching, "put_part", put)
    plan = batching.store_plan("bucket", "plans/job/target", entries(), batch_size=3, part_size=3)
    assert (plan.parts, plan.entries, sorted(indexes)) == (12, 34, list(range(12)))
    assert most_held == batching.PARALLEL_PUTS * 3


def test_status_defaults_and_overrides() -> None:
    assert [relay_status(r) for r in ("success", "PASSED", "FAILED", "STOPPED", "NOT_EXECUTED", "CUSTOM")] == [
        CaseStatus.PASSED,
        CaseStatus.PASSED,
        CaseStatus.FAILED,
        CaseStatus.BLOCKED,
        CaseStatus.UNTESTED,
        CaseStatus.UNTESTED,
    ]
    assert relay_status("FLAKY", {"FLAKY": CaseStatus.BLOCKED}) is CaseStatus.BLOCKED


def test_the_limiter_paces_calls_so_no_window_holds_more_than_the_limit() -> None:
    now = [0.0]
    sent: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(300, 60.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(900):
        limiter.acquire()
        sent.append(now[0])
    # (a microsecond of slack for float rounding of the 0.2 s steps)
    assert max(sum(1 for t in sent if start <= t < start + 60 - 1e-6) for start in sent) == 300
    # A 429's pause holds every later call back
    limiter.hold_off(60)
    before = now[0]
    limiter.acquire()
    assert now[0] - before == pytest.approx(60)


def test_override_refusals_name_each_id_and_its_reason() -> None:
    batch = [{"testCaseResultId": i} for i in (2286, 2287, 2288)]
    partial = _refused(["Given test case result id 2286 is not related to execution run 239"], batch)
    assert partial == [
        {"testCaseResultId": 2286, "reason": "Given test case result id 2286 is not related to execution run 239"}
    ]
    message = (
        "testsigma: PUT /execution_results/239/override: HTTP 400 Failed to override the result, \n cause :"
        "Given test case result id 2288 is not related to execution run 239 \n "
        "Given test case result id 2286 is not related to execution run 239"
    )
    refused = {r["testCaseResultId"]: r["reason"] for r in _whole_batch_refused(message, batch)}
    assert sorted(refused) == [2286, 2287, 2288]
    assert refused[2288] == "Given test case result id 2288 is not related to execution run 239"
    assert refused[2287].startswith("testsigma: PUT")


def test_the_ci_summary_names_each_target_and_stays_within_140_characters() -> None:
    counts = RunCounts(total=6, passed=4, failed=1, untested=1)
    outcomes = [
        {"target": "tm", "status": "written", "unmatched": 1},
        {"target": "bs", "status": "failed"},
        {"target": "ov", "status": "partial", "refused_count": 2},
    ]
    state, description = summarise(counts, outcomes)
    # Results not written outrank failed tests: the status is an error, and says so first
    assert state == "error"
    assert description == (
        "results not written: bs, ov; 4 passed, 1 failed, 1 not run; tm: ok, 1 unmatched; bs: failed; "
        "ov: partial (2 refused)"
    )
    many = [{"target": f"target-number-{n}", "status": "written", "unmatched": 2} for n in range(8)]
    _, compact = summarise(RunCounts(total=2, passed=2), [*many, {"target": "bs", "status": "failed"}])
    assert compact == "results not written: bs; 2 passed, 0 failed; 8/9 targets ok, 16 unmatched"
    assert len(compact) <= 140


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        (["smoke", "testsigma:501"], ("smoke", "testsigma:501")),
        ([{"id": "l-1", "name": "testsigma:501"}, {"id": "l-2", "title": "smoke"}], ("testsigma:501", "smoke")),
        ([{"id": "l-3"}, None, 7], ()),
        (None, ()),
        ("testsigma:501", ()),
    ],
)
def test_labels_are_read_as_strings_or_objects(raw: object, names: tuple[str, ...]) -> None:
    assert label_names(raw) == names


@pytest.mark.parametrize(
    "raw",
    [
        [{"field_name": "ts_id", "value": "502"}, {"field_name": "estimate", "value": None}],
        {"ts_id": "502"},
        {"ts_id": ["502"]},
        [{"field_name": "ts_id", "value": ["502"]}],
    ],
)
def test_custom_fields_are_read_as_a_list_or_a_dict(raw: object) -> None:
    assert custom_field_values(raw) == {"ts_id": ("502",)}
    catalog = CaseCatalog.build(
        [TargetCase(id="uuid-2", key="TC-2", fields=custom_field_values(raw))], ["field"], "ts_id"
    )
    assert catalog.by_field == {"502": ["uuid-2"]}


@pytest.mark.parametrize(
    ("overrides", "result", "sent"),
    [
        ({"ABORTED": "FAILED"}, "ABORTED", "FAILURE"),  # the newer spelling goes out as the enum's
        ({"FAILED": "passed"}, "FAILURE", "SUCCESS"),  # a rule keyed by either spelling matches either
        ({"FAILURE": "SUCCESS"}, "FAILED", "SUCCESS"),
        ({"SUCCESS": "PASSED"}, "PASSED", None),  # already that result: nothing to override
        ({"ABORTED": "FLAKY"}, "ABORTED", "FLAKY"),  # outside the enum: sent, so the refusal is reported
    ],
)
def test_override_values_go_out_in_the_enum_spelling(overrides: dict[str, str], result: str, sent: str | None) -> None:
    # (built without the routes file's validation, which refuses some of these rules up front)
    target = OverrideTarget.model_construct(kind="testsigma_override", overrides=overrides, case_ids=[])
    assert _wanted(target, 1, result) == sent

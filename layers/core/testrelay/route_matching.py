"""Which routes want a CI event, and why the others do not (for the routes file's models and for the
webhook's index of it alike: both name their rules the same)."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Protocol, TypeVar

from testrelay.models.ci_event import CiEvent


class MatchRules(Protocol):
    @property
    def providers(self) -> Sequence[str]: ...
    @property
    def events(self) -> Sequence[str]: ...
    @property
    def repositories(self) -> Sequence[str]: ...
    @property
    def branches(self) -> Sequence[str]: ...
    @property
    def workflows(self) -> Sequence[str]: ...
    @property
    def outcomes(self) -> Sequence[str]: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def forks(self) -> bool: ...
    @property
    def child_pipelines(self) -> bool: ...


class Matchable(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def match(self) -> MatchRules: ...


RouteT = TypeVar("RouteT", bound=Matchable)


def _matches_any(patterns: Sequence[str], value: str | None) -> bool:
    if not patterns:
        return True
    candidate = value or ""
    return any(fnmatchcase(candidate, pattern) for pattern in patterns)


def mismatch(route: Matchable, event: CiEvent) -> str | None:
    """Why `route` does not want `event`, or None when it does."""
    rules = route.match
    if event.fork and not rules.forks:
        return f"code from fork {event.head_repository or '(unnamed)'!r} (set match.forks: true to run for forks)"
    if event.child_pipeline and not rules.child_pipelines:
        return "child pipeline of a pipeline for the same commit (set match.child_pipelines: true to run for it)"
    checks = (
        ("provider", rules.providers, event.provider),
        ("event", rules.events, event.event),
        ("repository", rules.repositories, event.repository),
        ("branch", rules.branches, event.branch),
        ("tag", rules.tags, event.tag),
        ("workflow", rules.workflows, event.pipeline_name),
        ("outcome", rules.outcomes, event.outcome),
    )
    for label, patterns, value in checks:
        if not _matches_any(patterns, value):
            return f"{label} {value!r} not in {list(patterns)}"
    return None


def match_routes(routes: Sequence[RouteT], event: CiEvent) -> tuple[list[RouteT], list[str]]:
    """The routes that want the event, and for the others the reason they do not."""
    matched: list[RouteT] = []
    reasons: list[str] = []
    for route in routes:
        reason = mismatch(route, event)
        if reason is None:
            matched.append(route)
        else:
            reasons.append(f"route {route.name!r}: {reason}")
    return matched, reasons

"""Schedules in the routes file: validation, firing times, and the template's copy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from testrelay.errors import ConfigurationError, InvalidPayload
from testrelay.relay.schedules import scheduled_instant
from testrelay.routing import load_routes, parse_routes
from testrelay_local.schedules_sync import render_events, synced_template
from tests.support import ROOT

ROUTES = (ROOT / "config" / "routes.yaml").read_text()


def _with_schedule(**fields: str) -> str:
    schedule = {"name": "nightly", "route": "octo-checkout", "expression": "rate(1 day)", **fields}
    lines = "\n".join(f"    {key}: {value}" for key, value in schedule.items() if key != "name")
    return ROUTES.split("\nschedules:")[0] + f"\nschedules:\n  - name: {schedule['name']}\n{lines}\n"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"expression": "every night"}, "key 'schedules.0.expression'"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"route": "missing"}, "schedules name routes that do not exist: nightly -> missing"),
        ({"name": "Nightly Run"}, "key 'schedules.0.name'"),
    ],
)
def test_schedule_mistakes_are_named(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        parse_routes(_with_schedule(**fields))
    assert message in str(error.value)


def test_cron_rate_and_at_expressions_are_accepted() -> None:
    for expression in ("cron(0 2 * * ? *)", "rate(15 minutes)", "at(2026-12-24T18:00:00)"):
        assert parse_routes(_with_schedule(expression=expression)).schedules[0].expression == expression


def test_a_firing_is_identified_by_its_minute_in_utc() -> None:
    assert scheduled_instant("2026-11-24T02:00:37+01:00") == "2026-11-24T01:00Z"
    assert scheduled_instant("2026-11-24T01:00:00Z") == "2026-11-24T01:00Z"
    assert scheduled_instant(None, now=datetime(2026, 11, 23, 9, 5, 59, tzinfo=UTC)) == "2026-11-23T09:05Z"
    with pytest.raises(InvalidPayload, match="not an ISO 8601 time"):
        scheduled_instant("tonight")


def test_the_template_carries_exactly_the_routes_files_schedules() -> None:
    # `testrelay schedules sync` was run after the last change to config/routes.yaml
    template = (ROOT / "template.yaml").read_text()
    config = load_routes(ROOT / "config" / "routes.yaml")
    assert synced_template(template, config) == template
    rendered = render_events(config)
    assert 'ScheduleExpression: "cron(0 2 * * ? *)"' in rendered
    assert "ScheduleExpressionTimezone: Europe/Berlin" in rendered
    assert "<aws.scheduler.scheduled-time>" in rendered

"""Keeps the ScheduleFunction's EventBridge Scheduler events in template.yaml in step with the
routes file's `schedules` (CloudFormation cannot read the routes file, so the template carries a copy)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from testrelay.errors import ConfigurationError
from testrelay.models.routes import RoutesConfig

BEGIN = "      # BEGIN schedules:"
END = "      # END schedules"


def _logical_id(name: str) -> str:
    return "Schedule" + "".join(part.capitalize() for part in re.split(r"[-_]", name))


def render_events(config: RoutesConfig) -> str:
    if not config.schedules:
        return ""
    lines = ["      Events:"]
    for schedule in config.schedules:
        payload = json.dumps({"schedule": schedule.name, "scheduled_time": "<aws.scheduler.scheduled-time>"})
        lines += [
            f"        {_logical_id(schedule.name)}:",
            "          Type: ScheduleV2",
            "          Properties:",
            f"            Name: !Sub ${{AWS::StackName}}-{schedule.name}",
            f"            Description: {json.dumps(schedule.description or f'testrelay schedule {schedule.name}')}",
            f"            ScheduleExpression: {json.dumps(schedule.expression)}",
            f"            ScheduleExpressionTimezone: {schedule.timezone}",
            f"            State: {'ENABLED' if schedule.enabled else 'DISABLED'}",
            f"            Input: {json.dumps(payload)}",
            "            RetryPolicy:",
            "              MaximumRetryAttempts: 3",
        ]
    return "\n".join(lines) + "\n"


def synced_template(template: str, config: RoutesConfig) -> str:
    begin = template.find(BEGIN)
    end = template.find(END, begin)
    if begin < 0 or end < 0:
        raise ConfigurationError(
            f"the template has no {BEGIN.strip()!r} ... {END.strip()!r} block under ScheduleFunction: "
            "is it testrelay's template.yaml? (--template)"
        )
    block_start = template.index("\n", begin) + 1
    return template[:block_start] + render_events(config) + template[end:]


def sync(template_path: Path, config: RoutesConfig) -> bool:
    """Rewrite the generated block; True when the template changed."""
    current = template_path.read_text(encoding="utf-8")
    updated = synced_template(current, config)
    if updated != current:
        template_path.write_text(updated, encoding="utf-8")
    return updated != current

"""The markdown summary a job leaves on the CI (check run summary, pull-request comment, merge-request
note): counts per status, per target, links, failed, newly failing and slowest cases.

Every name and message comes from the tests, so all of it is escaped: no markdown, HTML, table break
or @mention can come out of a case name. The text is cut to the vendor's limit with a note saying so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from testrelay.models.execution import CaseResult, RunCounts
from testrelay.relay.ci_digest import Digest

GITHUB_TEXT_LIMIT = 65_535
"""Check run output.summary / output.text; GitHub's issue comment body takes 65,536."""
CELL_LIMIT = 300
_ESCAPED = re.compile(r"([\\`*_{}\[\]()#!|~>])")
_BLOCK_START = re.compile(r"^([-+=]|\d+[.)])")
"""What would open a list item or underline a heading at the start of a line."""
_SPACE = re.compile(r"\s+")
_ICONS = {"passed": "✅", "failed": "❌", "blocked": "⛔", "skipped": "⏭️", "untested": "⚪"}
_STATUS_NAMES = {"untested": "not run"}
_TARGET_NOTES = {"failed": "❌ not written", "partial": "⚠️ written in part", "nothing_to_write": "nothing matched"}


def text(value: object, limit: int = CELL_LIMIT) -> str:
    """Inline markdown showing `value` literally, on one line, at most about `limit` characters."""
    plain = _SPACE.sub(" ", str(value)).strip()
    plain = plain.encode("utf-8", "replace").decode("utf-8")
    if len(plain) > limit:
        plain = plain[: limit - 1] + "…"
    plain = plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    plain = _ESCAPED.sub(r"\\\1", plain)
    plain = _BLOCK_START.sub(lambda start: start.group(1)[:-1] + "\\" + start.group(1)[-1], plain)
    # A zero-width word joiner keeps "@team" from notifying anyone.
    return plain.replace("@", "@\u2060")


def link(label: str, url: str | None) -> str:
    """`[label](url)` for an http(s) URL; the bare (escaped) label otherwise."""
    if not url:
        return label
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return label
    return f"[{label}]({quote(url, safe=':/?#&=%+@,;~!$*')})"


def duration(ms: int) -> str:
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


@dataclass(frozen=True)
class SummaryInput:
    route: str
    counts: RunCounts
    headline: str
    """The one-line outcome (the commit status description)."""
    conclusion: str
    """success, failure or error (the commit status state)."""
    run_url: str | None
    run_label: str
    outcomes: Sequence[Mapping[str, Any]]
    found: Digest
    ci_run_url: str | None = None
    job_id: str = ""


def _label(result: CaseResult) -> str:
    name = result.name if result.iteration is None else f"{result.name} [iteration {result.iteration}]"
    return f"{name} on {result.machine}" if result.machine else name


def _counts_table(counts: RunCounts) -> list[str]:
    rows = ["| | Status | Cases |", "|---|---|---:|"]
    for status in ("passed", "failed", "blocked", "skipped", "untested"):
        number = int(getattr(counts, status))
        if number or status in ("passed", "failed"):
            rows.append(f"| {_ICONS[status]} | {_STATUS_NAMES.get(status, status)} | {number} |")
    rows.append(f"| | **total** | **{counts.total}** |")
    return rows


def _targets_table(outcomes: Sequence[Mapping[str, Any]]) -> list[str]:
    if not outcomes:
        return []
    rows = [
        "",
        "#### Test management",
        "",
        "| Target | Result | Written | Unmatched | Run |",
        "|---|---|---:|---:|---|",
    ]
    for outcome in outcomes:
        status = str(outcome.get("status") or "")
        note = _TARGET_NOTES.get(status, "✅ written")
        run = text(outcome.get("run_id") or "—", 80)
        run_url = outcome.get("run_url")
        rows.append(
            f"| {text(outcome.get('target', ''), 80)} | {note} | {int(outcome.get('written', 0) or 0)} "
            f"| {int(outcome.get('unmatched', 0) or 0)} | {link(run, str(run_url) if run_url else None)} |"
        )
    return rows


def _failed_rows(failed: Sequence[CaseResult]) -> list[str]:
    return [f"| {text(_label(r))} | {text(r.result, 40)} | {text(r.message or '', CELL_LIMIT)} |" for r in failed]


def render(summary: SummaryInput, limit: int = GITHUB_TEXT_LIMIT, marker: str = "") -> str:
    """The whole summary, at most `limit` characters; rows that do not fit are counted in a note."""
    found = summary.found
    for shown in _row_budgets(len(found.failed)):
        body = _render(summary, shown, marker)
        if len(body) <= limit:
            return body
    # Only a head larger than the limit itself is left (limits far below any real one): cut it.
    note = "\n\n_…cut to fit the size limit._\n"
    return body[: limit - len(note)] + note if limit > len(note) else body[:limit]


def _row_budgets(total: int) -> list[int]:
    budgets = [total]
    while budgets[-1] > 0:
        budgets.append(budgets[-1] // 2)
    return budgets


def _render(summary: SummaryInput, failed_shown: int, marker: str) -> str:
    found = summary.found
    icon = {"success": "✅", "failure": "❌"}.get(summary.conclusion, "⚠️")
    lines = [marker] if marker else []
    lines += [f"### {icon} testrelay · {text(summary.route, 80)}: {text(summary.headline, 200)}", ""]
    lines += _counts_table(summary.counts)
    links = [f"**{summary.run_label}:** {link('open', summary.run_url) if summary.run_url else '—'}"]
    if summary.ci_run_url:
        links.append(f"**CI run:** {link('open', summary.ci_run_url)}")
    lines += ["", " · ".join(links)]
    lines += _targets_table(summary.outcomes)
    if found.failed_total:
        lines += ["", f"#### Failed cases ({found.failed_total})", "", "| Case | Result | Message |", "|---|---|---|"]
        lines += _failed_rows(found.failed[:failed_shown])
        hidden = found.failed_total - failed_shown
        if hidden > 0:
            lines += ["", f"_…and {hidden} more failed case(s) not listed here._"]
    if found.newly_failing is not None:
        since = f" (job {text(found.compared_with, 80)})" if found.compared_with else ""
        lines += ["", f"#### Newly failing ({len(found.newly_failing)})", ""]
        lines += [f"Compared with the previous report of this route for the same pull request or branch{since}."]
        newly = found.newly_failing[: max(failed_shown, 0)]
        if newly:
            lines += [""] + [f"- {text(_label(r))}" for r in newly]
        else:
            lines += ["", "_None: every failure also failed before._"]
        if len(found.newly_failing) > len(newly):
            lines += [f"- _…and {len(found.newly_failing) - len(newly)} more_"]
    if found.slowest:
        lines += ["", "#### Slowest cases", "", "| Case | Duration |", "|---|---:|"]
        lines += [f"| {text(_label(r))} | {duration(r.duration_ms or 0)} |" for r in found.slowest]
    if summary.job_id:
        lines += ["", f"<sub>testrelay job {text(summary.job_id, 80)}</sub>"]
    return "\n".join(lines) + "\n"

"""The outcome vocabulary: every provider maps its own status words to these, so one route's
`outcomes` means the same thing whichever CI sent the event."""

from __future__ import annotations

from collections.abc import Mapping

OUTCOMES: Mapping[str, str] = {
    "success": "the run passed",
    "failure": "the run failed",
    "unstable": "the run finished with test failures or warnings (Jenkins UNSTABLE, Azure partiallySucceeded)",
    "cancelled": "someone or something stopped the run",
    "skipped": "the run did not execute (GitLab skipped, CircleCI not_run, Jenkins NOT_BUILT)",
    "timed_out": "the run hit its time limit",
    "error": "the CI could not run it (infrastructure or configuration error)",
    "neutral": "GitHub only: the run ended neither passed nor failed",
    "action_required": "GitHub only",
    "stale": "GitHub only",
}


def normalise(mapping: Mapping[str, str], status: str) -> str:
    """The vocabulary word for a provider status; a status the mapping does not know passes through
    lower-cased, so a route can still name it and nothing is silently renamed."""
    return mapping.get(status.lower(), status.lower())

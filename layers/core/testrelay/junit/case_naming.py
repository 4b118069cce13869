"""The name and suite a JUnit test case is known by (from its attributes, and its suite's).

A case without a name is still a result, often the one that matters most: Surefire 3 writes
`<testcase name="" classname="com.acme.FooTest">` with the error when `@BeforeAll` fails, GoogleTest
`name="" classname=""` for a failing SetUpTestSuite, jest for an empty title. It is named after
its classname (else its suite), and the name says it had none: "com.acme.FooTest (test case without a name)".

The suite is the `classname`, except where the runner put the test's title there: mocha-junit-reporter
(also under Cypress) writes `name="<suite titles> <test title>" classname="<test title>"`, jest-junit's
default templates write the same text in both, Nette Tester the file path in both. When the classname is
the name or its last words it names the test, not a class, and the enclosing `<testsuite>` names the suite.
mocha's top-level placeholder suite "Root Suite" is named by its `file` when it has one.

testrelay.junit.report applies the classname rule itself, inline in its per-case handler (a function call
per case is a measurable share of the parse); the names it needs are here.
"""

from __future__ import annotations

from collections.abc import Mapping

UNNAMED = "test case without a name"
MOCHA_ROOT_SUITE = "Root Suite"


def suite_name(suite: Mapping[str, str]) -> str | None:
    name = (suite.get("name") or "").strip()
    if name == MOCHA_ROOT_SUITE:
        return (suite.get("file") or "").strip() or None
    return name or None


def unnamed(named_after: str | None) -> str:
    """The name of a case that has none, after its classname (else its suite)."""
    return f"{named_after} ({UNNAMED})" if named_after else f"({UNNAMED})"

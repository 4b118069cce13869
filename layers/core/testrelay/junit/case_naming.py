"""The name and suite a JUnit test case is known by.

A case without a name is still a result, often the one that matters most: Surefire 3 writes
`<testcase name="" classname="com.acme.FooTest">` with the error when `@BeforeAll` fails, GoogleTest
`name="" classname=""` for a failing SetUpTestSuite, jest for an empty title. It is named after
its classname (else its suite), and the name says it had none: "com.acme.FooTest (test case without a name)".

The suite is the `classname`, except where the runner put the test's title there: mocha-junit-reporter
(also under Cypress) writes `name="<suite titles> <test title>" classname="<test title>"`, jest-junit's
default templates write the same text in both, Nette Tester the file path in both. When the classname is
the name or its last words it names the test, not a class, and the enclosing `<testsuite>` names the suite.
mocha's top-level placeholder suite "Root Suite" is named by its `file` when it has one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

UNNAMED = "test case without a name"
MOCHA_ROOT_SUITE = "Root Suite"


def suite_name(suite: ET.Element) -> str | None:
    name = (suite.get("name") or "").strip()
    if name == MOCHA_ROOT_SUITE:
        return (suite.get("file") or "").strip() or None
    return name or None


def case_name(case: ET.Element, suite: str | None) -> str:
    name = (case.get("name") or "").strip()
    if name:
        return name
    named_after = (case.get("classname") or "").strip() or suite
    return f"{named_after} ({UNNAMED})" if named_after else f"({UNNAMED})"


def case_suite(case: ET.Element, suite: str | None) -> str | None:
    classname = (case.get("classname") or "").strip()
    name = (case.get("name") or "").strip()
    if not classname or name == classname or name.endswith(" " + classname):
        return suite
    return classname

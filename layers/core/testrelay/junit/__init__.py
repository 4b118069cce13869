"""JUnit XML reports read as a careful person reads them (testrelay.junit.report)."""

from testrelay.junit.case import JunitCase
from testrelay.junit.report import parse_report

__all__ = ["JunitCase", "parse_report"]

"""JUnit XML reports read as a careful person reads them (testrelay.junit.report)."""

from testrelay.junit.report import parse_report

__all__ = ["parse_report"]

"""testrelay: relay CI events to Testsigma test plans and test-management tools."""

__version__ = "0.1.0"

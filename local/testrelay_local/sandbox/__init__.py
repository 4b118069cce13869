"""Vendor sandbox: a loopback HTTP server standing in for Testsigma, Testsigma TM and the CI status APIs
(GitHub, GitLab, Bitbucket)."""

from testrelay_local.sandbox.demo import (
    DEMO_BITBUCKET_APP_PASSWORD,
    DEMO_BITBUCKET_USERNAME,
    DEMO_BROWSERSTACK_ACCESS_KEY,
    DEMO_BROWSERSTACK_USERNAME,
    DEMO_BS_PROJECT_ID,
    DEMO_ENVIRONMENT_ID,
    DEMO_GITHUB_TOKEN,
    DEMO_GITLAB_TOKEN,
    DEMO_PLAN_CASES,
    DEMO_PLAN_ID,
    DEMO_PLAN_NAME,
    DEMO_TESTSIGMA_API_KEY,
    DEMO_TM_API_KEY,
    DEMO_TM_CASES,
    DEMO_TM_PROJECT_ID,
    DEMO_TM_PROJECT_NAME,
    DEMO_TM_STATUSES,
    DEMO_TM_USER_EMAIL,
    DEMO_TM_USER_ID,
)
from testrelay_local.sandbox.faults import FaultRule, FaultSettings
from testrelay_local.sandbox.sandbox import Sandbox
from testrelay_local.sandbox.seed import SandboxSeed, VendorBehaviour

__all__ = [
    "DEMO_BITBUCKET_APP_PASSWORD",
    "DEMO_BITBUCKET_USERNAME",
    "DEMO_BROWSERSTACK_ACCESS_KEY",
    "DEMO_BROWSERSTACK_USERNAME",
    "DEMO_BS_PROJECT_ID",
    "DEMO_ENVIRONMENT_ID",
    "DEMO_GITHUB_TOKEN",
    "DEMO_GITLAB_TOKEN",
    "DEMO_PLAN_CASES",
    "DEMO_PLAN_ID",
    "DEMO_PLAN_NAME",
    "DEMO_TESTSIGMA_API_KEY",
    "DEMO_TM_API_KEY",
    "DEMO_TM_CASES",
    "DEMO_TM_PROJECT_ID",
    "DEMO_TM_PROJECT_NAME",
    "DEMO_TM_STATUSES",
    "DEMO_TM_USER_EMAIL",
    "DEMO_TM_USER_ID",
    "FaultRule",
    "FaultSettings",
    "Sandbox",
    "SandboxSeed",
    "VendorBehaviour",
]

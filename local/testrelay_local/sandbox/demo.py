"""The demo data set: a Testsigma test plan whose cases name their Testsigma TM counterparts.

The ids are fixed so routes files, fixtures and tests can refer to them.
"""

from __future__ import annotations

from testrelay_local.sandbox.seed import (
    DEMO_BITBUCKET_APP_PASSWORD,
    DEMO_BITBUCKET_USERNAME,
    DEMO_BROWSERSTACK_ACCESS_KEY,
    DEMO_BROWSERSTACK_USERNAME,
    DEMO_GITHUB_TOKEN,
    DEMO_GITLAB_TOKEN,
    DEMO_TESTSIGMA_API_KEY,
    DEMO_TM_API_KEY,
    BsCaseSeed,
    BsProjectSeed,
    EnvironmentSeed,
    PlanCaseSeed,
    PlanSeed,
    SandboxSeed,
    TmCaseSeed,
    TmProjectSeed,
    TmStatusSeed,
    TmUserSeed,
)

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
    "demo_seed",
]

DEMO_PLAN_ID = 2741
DEMO_PLAN_NAME = "Checkout regression"
DEMO_ENVIRONMENT_ID = 12

DEMO_TM_PROJECT_ID = "c47ade67-0543-4582-a4a5-b7de447c94f5"
DEMO_TM_PROJECT_NAME = "Patient portal"

DEMO_TM_CASES: dict[str, str] = {
    "TC-101": "bd416588-70fa-5502-844c-30c7b7fe2f9e",
    "TC-102": "f58ab941-5429-5f18-a097-4467901898bd",
    "TC-103": "e3a52e61-a806-5624-add9-ab22660c8dc5",
    "TC-104": "a438365b-e26f-5efb-9929-c7ecfea8805b",
    "TC-105": "03772abf-bf10-5b66-8a5c-2aa6d2657550",
    "TC-106": "48b8f5a7-6e5d-5387-bed5-3592e01f0f1b",
    "TC-107": "6a16dc99-6e55-53da-b072-efea8e6c37bc",
    "TC-108": "6f1938c6-5a39-57c5-a2e7-8a2925b7c0a4",
}

DEMO_TM_STATUSES: dict[str, str] = {
    "Passed": "82deb495-f76c-5e89-a675-eb5152e2f1d7",
    "Failed": "3e3da2e0-6812-52e5-a92c-9fc345a0cacd",
    "Blocked": "e9cd12cc-dc2c-5837-a9fb-8b6287cafc79",
    "Skipped": "050432d3-9462-5ce4-8fca-01bbbbd02ea1",
    "Untested": "122027bd-fd85-5e20-926b-6d2f8dfac407",
    "Retest": "a37cdb40-ccd3-5495-a797-67dfbd1af91e",
}

DEMO_TM_USER_ID = "6c86375f-a029-57f6-994d-954b6ea7e4d6"
DEMO_TM_USER_EMAIL = "relay-bot@example.com"

DEMO_BS_PROJECT_ID = "PR-1"
"""The BrowserStack Test Management project: the same cases, identified by their TC- ids."""

_CART_SUITE = (801, "Cart")
_PAYMENT_SUITE = (802, "Payment")

# (testCaseId, TM human id, title, suite, final result); the data-driven case is built below.
_PLAN_CASES = (
    (9101, "TC-101", "Guest checkout with a saved card", _CART_SUITE, "SUCCESS"),
    (9102, "TC-102", "Apply a discount code", _CART_SUITE, "SUCCESS"),
    (9103, "TC-103", "Pay with an expired card is refused", _PAYMENT_SUITE, "FAILURE"),
    (9104, "TC-104", "Pay in each supported currency", _PAYMENT_SUITE, "SUCCESS"),
    (9105, "TC-105", "Pay by bank transfer", _PAYMENT_SUITE, "NOT_EXECUTED"),
    (9106, "TC-106", "Order confirmation e-mail", _CART_SUITE, "SUCCESS"),
)
_DATA_DRIVEN_CASE_ID = 9104

DEMO_PLAN_CASES: dict[str, int] = {human_id: case_id for case_id, human_id, *_ in _PLAN_CASES}
"""TM human id → Testsigma testCaseId of the demo plan's case that carries it in its name."""

_TM_EXTRA_CASES = (
    ("TC-107", "Refund to the original card", ["payments"]),
    ("TC-108", "Download an invoice as PDF", ["billing"]),
)


def _plan_case(case_id: int, human_id: str, title: str, suite: tuple[int, str], result: str) -> PlanCaseSeed:
    data_driven = case_id == _DATA_DRIVEN_CASE_ID
    return PlanCaseSeed.model_validate(
        {
            "testCaseId": case_id,
            "testCaseName": f"[{human_id}] {title}",
            "testSuiteId": suite[0],
            "testSuiteName": suite[1],
            "result": result,
            "isDataDrivenCase": data_driven,
            "iterations": [{"iteration": cur, "result": result} for cur in ("EUR", "USD")] if data_driven else [],
        }
    )


def demo_seed() -> SandboxSeed:
    tm_cases = [
        TmCaseSeed(id=DEMO_TM_CASES[human_id], human_id=human_id, title=title, labels=["checkout"])
        for _, human_id, title, _, _ in _PLAN_CASES
    ] + [
        TmCaseSeed(id=DEMO_TM_CASES[human_id], human_id=human_id, title=title, labels=labels)
        for human_id, title, labels in _TM_EXTRA_CASES
    ]
    return SandboxSeed(
        testsigma_api_key=DEMO_TESTSIGMA_API_KEY,
        testsigma_tm_api_key=DEMO_TM_API_KEY,
        github_token=DEMO_GITHUB_TOKEN,
        test_plans={
            DEMO_PLAN_ID: PlanSeed(
                name=DEMO_PLAN_NAME,
                description="Cart and payment journeys of the web shop",
                cases=[_plan_case(*case) for case in _PLAN_CASES],
            )
        },
        environments={DEMO_ENVIRONMENT_ID: EnvironmentSeed(name="Staging")},
        tm_projects={DEMO_TM_PROJECT_ID: TmProjectSeed(name=DEMO_TM_PROJECT_NAME, cases=tm_cases)},
        tm_run_statuses=[TmStatusSeed(id=status_id, name=name) for name, status_id in DEMO_TM_STATUSES.items()],
        tm_users=[TmUserSeed(id=DEMO_TM_USER_ID, email=DEMO_TM_USER_EMAIL, status="active")],
        bs_projects={
            DEMO_BS_PROJECT_ID: BsProjectSeed(
                name=DEMO_TM_PROJECT_NAME,
                cases=[
                    BsCaseSeed(
                        identifier=human_id, title=title, tags=["checkout"], custom_fields={"testsigma_id": str(cid)}
                    )
                    for cid, human_id, title, _, _ in _PLAN_CASES
                ]
                + [
                    BsCaseSeed(identifier=human_id, title=title, tags=labels)
                    for human_id, title, labels in _TM_EXTRA_CASES
                ],
            )
        },
    )

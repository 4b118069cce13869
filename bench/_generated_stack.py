"""What the write-back benches share: a generated data set of any size, and the URLs of a sandbox
served by another process (so the bench measures the relay, not a sandbox in its own process)."""

from __future__ import annotations

from typing import Any

RESULTS = ("SUCCESS", "SUCCESS", "SUCCESS", "FAILURE", "NOT_EXECUTED")


def generated_seed(
    size: int, name: str, behaviour: dict[str, Any] | None = None, tm_project: str | None = None
) -> dict[str, Any]:
    """A plan of `size` cases named `[TC-n] …` (a fifth failing, a fifth not run) and a BrowserStack
    project holding the same TC-n cases, so every result matches by id token; with `tm_project`, a
    Testsigma Test Management project of that id holding them too."""
    tm = {"tm_projects": {tm_project: {"name": name, "cases": _tm_cases(size)}}, "tm_run_statuses": _tm_statuses()}
    if not tm_project:
        tm = {}
    return {
        **tm,
        "behaviour": behaviour or {},
        "test_plans": {
            "1": {
                "name": f"{name} {size}",
                "cases": [
                    {
                        "testCaseId": 100000 + n,
                        "testCaseName": f"[TC-{n}] generated case {n}",
                        "testSuiteId": 1 + n // 1000,
                        "testSuiteName": f"suite {n // 1000}",
                        "result": RESULTS[n % len(RESULTS)],
                    }
                    for n in range(1, size + 1)
                ],
            }
        },
        "bs_projects": {
            "PR-1": {
                "name": name,
                "cases": [{"identifier": f"TC-{n}", "title": f"generated case {n}"} for n in range(1, size + 1)],
            }
        },
    }


def _tm_statuses() -> list[dict[str, str]]:
    from testrelay_local.sandbox import DEMO_TM_STATUSES

    return [{"id": status_id, "name": name} for name, status_id in DEMO_TM_STATUSES.items()]


def _tm_cases(size: int) -> list[dict[str, Any]]:
    return [{"id": f"tm-{n}", "human_id": f"TC-{n}", "title": f"generated case {n}"} for n in range(1, size + 1)]


class RemoteSandbox:
    """The URLs of a sandbox served by another process, shaped like `Sandbox`'s."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.testsigma_url = f"{base_url}/testsigma/api/v1"
        self.testsigma_tm_url = f"{base_url}/testsigma-tm/api/v1"
        self.browserstack_tm_url = f"{base_url}/browserstack-tm"
        self.github_url = f"{base_url}/github"
        self.gitlab_url = f"{base_url}/gitlab/api/v4"
        self.bitbucket_url = f"{base_url}/bitbucket/2.0"

"""The vendor sandbox for benchmarks: `python -m testrelay_local.sandbox` with one change.

The BrowserStack and Test Management stand-ins build the whole case list of a project for every page
of their case listings (O(cases) per call): at 100,000 cases each page costs the stand-in far more than
the relay, and a benchmark of the relay's pacing would measure the stand-in. Here the list is built
once per project (the seed never changes during a run); every answer stays byte for byte the same.
"""

from __future__ import annotations

from typing import Any

from testrelay_local.sandbox.__main__ import main
from testrelay_local.sandbox.browserstack_tm import BrowserStackTmApi
from testrelay_local.sandbox.messages import Request, Response
from testrelay_local.sandbox.testsigma_tm import TestsigmaTmApi


def _project_cases(self: Any, request: Request, params: dict[str, str]) -> Response:
    memo: dict[str, list[dict[str, Any]]] = self.__dict__.setdefault("_bench_cases", {})
    project_id = params["project_id"]
    if project_id not in memo:
        cases = self._seed.bs_projects[project_id].cases
        memo[project_id] = [{**case.model_dump(), "name": case.title} for case in cases]
    response: Response = self._page(request, "test_cases", memo[project_id])
    return response


def _tm_cases(self: Any, request: Request, params: dict[str, str]) -> Response:
    memo: dict[str, list[dict[str, Any]]] = self.__dict__.setdefault("_bench_cases", {})
    project_id = params["project_id"]
    if project_id not in memo:
        memo[project_id] = [self._case_view(case, project_id) for case in self._seed.tm_projects[project_id].cases]
    response: Response = self._page(request, "test_cases", memo[project_id])
    return response


BrowserStackTmApi._project_cases = _project_cases  # type: ignore[method-assign]
TestsigmaTmApi._list_cases = _tm_cases  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(main())

"""Bitbucket Cloud Code Insights: reports per commit (`PUT/GET/DELETE .../commit/{sha}/reports/{id}`) and
their annotations (`POST .../annotations`, at most 100 a request and 1,000 a report), as documented.

A report is addressed by its uuid or its external id; deleting it deletes its annotations. Whether a
bulk upload may repeat an `external_id` the report holds is not documented: `bb_annotation_repeat`
says (upsert: the annotation is replaced; conflict: 409 for the whole request).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from testrelay_local.sandbox.messages import MalformedBody, Request, Response
from testrelay_local.sandbox.seed import VendorBehaviour

REPORT_TYPES = ("SECURITY", "COVERAGE", "TEST", "BUG")
REPORT_RESULTS = ("PASSED", "FAILED", "PENDING")
DATA_TYPES = ("BOOLEAN", "DATE", "DURATION", "LINK", "NUMBER", "PERCENTAGE", "TEXT")
ANNOTATION_TYPES = ("VULNERABILITY", "CODE_SMELL", "BUG")
ANNOTATION_RESULTS = ("PASSED", "FAILED", "IGNORED", "SKIPPED")
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
MAX_DATA = 10
MAX_DETAILS = 2000
MAX_TITLE = 450
MAX_SUMMARY = 450
PER_REQUEST = 100
PER_REPORT = 1000

Error = Callable[[int, str, dict[str, list[str]] | None], Response]


class BitbucketReports:
    def __init__(self, error: Error, behaviour: Callable[[], VendorBehaviour], clock: Callable[[], float] = time.time):
        self._error = error
        self._behaviour = behaviour
        self._clock = clock
        self.reports: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        """workspace/repo → sha → external id → report (with its `annotations` by external id)."""

    def routes(self) -> list[tuple[str, str, Callable[[Request, dict[str, str]], Response]]]:
        base = "/repositories/{workspace}/{repo}/commit/{sha}/reports"
        return [
            ("PUT", base + "/{report}", self._put),
            ("GET", base + "/{report}", self._get),
            ("DELETE", base + "/{report}", self._delete),
            ("GET", base, self._list),
            ("POST", base + "/{report}/annotations", self._annotate),
            ("GET", base + "/{report}/annotations", self._annotations),
        ]

    def _stamp(self) -> str:
        return datetime.fromtimestamp(self._clock(), UTC).isoformat()

    def _of_commit(self, params: dict[str, str]) -> dict[str, dict[str, Any]]:
        return self.reports.setdefault(f"{params['workspace']}/{params['repo']}", {}).setdefault(params["sha"], {})

    def _report(self, params: dict[str, str]) -> tuple[str, dict[str, Any]] | None:
        for key, report in self._of_commit(params).items():
            if params["report"] in (key, report["uuid"]):
                return key, report
        return None

    @staticmethod
    def _public(report: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in report.items() if k != "annotations"}

    def _put(self, request: Request, params: dict[str, str]) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise MalformedBody("the request body must be a JSON object")
        fields: dict[str, list[str]] = {}
        if not isinstance(body.get("title"), str) or not body["title"]:
            fields["title"] = ["This field is required."]
        elif len(body["title"]) > MAX_TITLE:
            fields["title"] = [f"Ensure this field has no more than {MAX_TITLE} characters."]
        if body.get("report_type") not in REPORT_TYPES:
            fields["report_type"] = [f"must be one of {', '.join(REPORT_TYPES)}"]
        if body.get("result") is not None and body["result"] not in REPORT_RESULTS:
            fields["result"] = [f"must be one of {', '.join(REPORT_RESULTS)}"]
        if isinstance(body.get("details"), str) and len(body["details"]) > MAX_DETAILS:
            fields["details"] = [f"Ensure this field has no more than {MAX_DETAILS} characters."]
        data = body.get("data") or []
        if not isinstance(data, list) or len(data) > MAX_DATA:
            fields["data"] = [f"A report holds at most {MAX_DATA} data elements."]
        else:
            for item in data:
                if not isinstance(item, dict) or item.get("type") not in DATA_TYPES or "value" not in item:
                    fields["data"] = [f"each element needs a title, a type ({', '.join(DATA_TYPES)}) and a value"]
                elif item["type"] == "LINK" and not (isinstance(item["value"], dict) and item["value"].get("href")):
                    fields["data"] = ["a LINK value is an object with text and href"]
        if fields:
            first = next(iter(fields))
            return self._error(400, f"{first}: {fields[first][0]}", fields)
        by_key = self._of_commit(params)
        existing = self._report(params)
        stamp = self._stamp()
        report = {
            "type": "report",
            "uuid": existing[1]["uuid"] if existing else "{" + str(uuid.uuid4()) + "}",
            "external_id": params["report"],
            "created_on": existing[1]["created_on"] if existing else stamp,
            "updated_on": stamp,
            **{k: body.get(k) for k in ("title", "details", "report_type", "reporter", "link", "result", "logo_url")},
            "data": data,
            # Whether a replaced report keeps its annotations is not documented: kept here, the variant
            # a client must clean up after (a delete removes them, as documented).
            "annotations": existing[1]["annotations"] if existing else {},
        }
        by_key[existing[0] if existing else params["report"]] = report
        return Response.of_json(200, self._public(report))

    def _get(self, request: Request, params: dict[str, str]) -> Response:
        found = self._report(params)
        if found is None:
            return self._error(404, "Report not found", None)
        return Response.of_json(200, self._public(found[1]))

    def _delete(self, request: Request, params: dict[str, str]) -> Response:
        found = self._report(params)
        if found is None:
            return self._error(404, "Report not found", None)
        del self._of_commit(params)[found[0]]
        return Response(status=204)

    def _list(self, request: Request, params: dict[str, str]) -> Response:
        values = [self._public(r) for r in self._of_commit(params).values()]
        return Response.of_json(200, {"pagelen": 100, "size": len(values), "page": 1, "values": values})

    def _annotate(self, request: Request, params: dict[str, str]) -> Response:
        found = self._report(params)
        if found is None:
            return self._error(404, "Report not found", None)
        report = found[1]
        body = request.json()
        if not isinstance(body, list):
            raise MalformedBody("the request body must be a JSON array of annotations")
        if len(body) > PER_REQUEST:
            return self._error(400, f"At most {PER_REQUEST} annotations can be uploaded per request", None)
        held: dict[str, Any] = report["annotations"]
        for index, item in enumerate(body):
            problem = _annotation_problem(item)
            if problem:
                return self._error(400, f"annotations[{index}]: {problem}", None)
        ids = [item["external_id"] for item in body]
        known = [i for i in ids if i in held]
        if known and self._behaviour().bb_annotation_repeat == "conflict":
            return self._error(409, f"An annotation with external_id {known[0]!r} already exists", None)
        if len(set(held) | set(ids)) > PER_REPORT:
            return self._error(400, f"A report can contain at most {PER_REPORT} annotations", None)
        stamp = self._stamp()
        saved = []
        for item in body:
            annotation = {
                "type": "report_annotation",
                "uuid": held.get(item["external_id"], {}).get("uuid") or "{" + str(uuid.uuid4()) + "}",
                **item,
                "created_on": stamp,
                "updated_on": stamp,
            }
            held[item["external_id"]] = annotation
            saved.append(annotation)
        return Response.of_json(200, saved)

    def _annotations(self, request: Request, params: dict[str, str]) -> Response:
        found = self._report(params)
        if found is None:
            return self._error(404, "Report not found", None)
        values = list(found[1]["annotations"].values())
        return Response.of_json(200, {"pagelen": len(values), "size": len(values), "page": 1, "values": values})

    def snapshot(self) -> dict[str, Any]:
        return {
            repo: {
                sha: {key: {**r, "annotations": list(r["annotations"].values())} for key, r in by_key.items()}
                for sha, by_key in by_sha.items()
            }
            for repo, by_sha in self.reports.items()
        }


def _annotation_problem(item: object) -> str | None:
    if not isinstance(item, dict):
        return "must be an object"
    if not isinstance(item.get("external_id"), str) or not item["external_id"]:
        return "external_id is required"
    if item.get("annotation_type") not in ANNOTATION_TYPES:
        return f"annotation_type must be one of {', '.join(ANNOTATION_TYPES)}"
    if not isinstance(item.get("summary"), str) or not item["summary"]:
        return "summary is required"
    if len(item["summary"]) > MAX_SUMMARY:
        return f"summary has more than {MAX_SUMMARY} characters"
    if isinstance(item.get("details"), str) and len(item["details"]) > MAX_DETAILS:
        return f"details has more than {MAX_DETAILS} characters"
    if item.get("severity") is not None and item["severity"] not in SEVERITIES:
        return f"severity must be one of {', '.join(SEVERITIES)}"
    if item.get("result") is not None and item["result"] not in ANNOTATION_RESULTS:
        return f"result must be one of {', '.join(ANNOTATION_RESULTS)}"
    return None

"""JUnit reports in: verify, check, store in S3, enqueue a junit job for the named route.

Signed like the generic hook (`X-Testrelay-Signature: sha256=<HMAC-SHA256(generic secret, raw body)>`).
Small reports come in the request and are checked before anything is stored or queued; large ones go
to S3 through a size-capped pre-signed POST (API Gateway takes at most 10 MB) and are checked when the job parses
them, which fails the job with the reason before anything is written to a target.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from testrelay.aws.queue import send_jobs
from testrelay.aws.results_store import presigned_post, put_report, report_exists, report_key
from testrelay.aws.secrets import webhook_secret
from testrelay.ci.base import load_json_object
from testrelay.ci.generic import GenericProvider
from testrelay.errors import AuthenticationFailed, InvalidPayload
from testrelay.junit import parse_report
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job, job_id_for
from testrelay.models.routes import RouteAction
from testrelay.observability import correlate, logger, metrics
from testrelay.relay.intake import Answer
from testrelay.routing import load_routes
from testrelay.settings import get_settings

UPLOAD_EXPIRES_SECONDS = 900
MAX_UPLOAD_BYTES = 256 * 1024 * 1024
"""The largest report an upload takes (the pre-signed POST's content-length-range; S3 refuses more)."""
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


class ReportContext(BaseModel):
    """Where the report comes from: query parameters of the direct upload, the JSON body of an upload's
    completion. All optional; `delivery_id` is the dedupe key (default: the report's bytes, or the upload)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivery_id: str | None = Field(default=None, min_length=1, max_length=200)
    repository: str | None = Field(default=None, min_length=1, max_length=300)
    branch: str | None = Field(default=None, max_length=300)
    sha: str | None = Field(default=None, max_length=100)
    run_url: str | None = Field(default=None, max_length=2000)
    pipeline_name: str = Field(default="", max_length=300)

    @field_validator("*")
    @classmethod
    def _encodable(cls, value: object) -> object:
        # JSON may carry a lone surrogate ("\ud800"); it would only fail later, when the job is serialised.
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("is not valid Unicode (holds a lone surrogate)") from None
        return value

    def job(self, route: RouteAction, default_delivery: str, key_of: str | None = None) -> Job:
        delivery = self.delivery_id or default_delivery
        job_id = job_id_for("junit", delivery, route.name)
        event = CiEvent(
            provider="junit",
            event="junit_report",
            delivery_key=delivery,
            repository=self.repository or f"junit/{route.name}",
            branch=self.branch,
            commit_sha=self.sha,
            run_url=self.run_url,
            pipeline_name=self.pipeline_name,
        )
        return Job(id=job_id, kind="junit", route=route, event=event, report_key=key_of or report_key(job_id))


class UploadCompletion(ReportContext):
    """The signed body of an upload's completion. It names its upload: the URL path is not covered by
    the signature, so a captured completion cannot be replayed against another upload."""

    upload_id: str


def _context(values: Mapping[str, Any], model: type[ReportContext] = ReportContext) -> ReportContext:
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'context'}: {e['msg']}" for e in exc.errors())
        raise InvalidPayload(f"report context: {problems}") from exc


def _refusal(route_name: str, headers: Mapping[str, str], body: bytes) -> Answer | RouteAction:
    """The route to write to, or the answer refusing the request."""
    try:
        GenericProvider().authenticate(headers, body, webhook_secret("generic"))
    except AuthenticationFailed as exc:
        metrics.add_metric(name="WebhookRejected", unit=MetricUnit.Count, value=1)
        logger.warning("report upload rejected", route=route_name, reason=str(exc))
        return Answer(401, {"status": "unauthorized", "message": str(exc)})
    try:
        return load_routes(get_settings().require("routes_file")).route(route_name).action()
    except KeyError:
        return Answer(404, {"status": "unknown_route", "message": f"no route {route_name!r}"})


def _unavailable(route_name: str, what: str, exc: Exception) -> Answer:
    """S3 or SQS failed: nothing was accepted, and the same request can be sent again."""
    logger.error(f"{what} failed", route=route_name, error=str(exc))
    return Answer(503, {"status": "error", "message": f"{what} failed; send the request again later"})


def _completion_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        return load_json_object(body)
    except (ValueError, RecursionError) as exc:
        # Valid JSON Python will not load: an integer of thousands of digits, arrays nested thousands deep.
        raise InvalidPayload(
            "upload completion body is JSON that cannot be loaded (a number too long or nesting too deep)"
        ) from exc


def _invalid(route_name: str, exc: InvalidPayload) -> Answer:
    logger.warning("report refused", route=route_name, reason=str(exc))
    metrics.add_metric(name="WebhookInvalid", unit=MetricUnit.Count, value=1)
    return Answer(400, {"status": "invalid", "message": str(exc)})


def _enqueue(job: Job, **answer: Any) -> Answer:
    correlate(job_id=job.id, route=job.route.name, delivery=job.event.delivery_key)
    try:
        send_jobs(get_settings().require("jobs_queue_url"), [job])
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(job.route.name, "queueing the junit job", exc)
    logger.info("junit job enqueued", job_id=job.id, route=job.route.name, report=job.report_key)
    metrics.add_metric(name="JobsEnqueued", unit=MetricUnit.Count, value=1)
    return Answer(202, {"status": "accepted", "delivery": job.event.delivery_key, "jobs": [job.id], **answer})


def receive_report(route_name: str, headers: Mapping[str, str], query: Mapping[str, str], body: bytes) -> Answer:
    """POST /reports/junit/{route}: the report is the body."""
    headers = {name.lower(): value for name, value in headers.items()}
    route = _refusal(route_name, headers, body)
    if isinstance(route, Answer):
        return route
    try:
        context = _context(query)
        if context.delivery_id:
            # The query is not signed: a dedupe key from it would let a captured report be replayed as new.
            raise InvalidPayload(
                "delivery_id is not accepted in the query (it is not signed); a report sent in the request "
                "dedupes on its content, an uploaded one on its signed completion"
            )
        cases = sum(1 for _ in parse_report(io.BytesIO(body), route.junit))
    except InvalidPayload as exc:
        return _invalid(route_name, exc)
    job = context.job(route, "sha256:" + hashlib.sha256(body).hexdigest())
    assert job.report_key is not None
    try:
        put_report(get_settings().require("results_bucket"), job.report_key, body)
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(route_name, "storing the report", exc)
    return _enqueue(job, cases=cases)


def start_upload(route_name: str, headers: Mapping[str, str], body: bytes) -> Answer:
    """POST /reports/junit/{route}/uploads: a pre-signed POST for a report too large for a request."""
    headers = {name.lower(): value for name, value in headers.items()}
    route = _refusal(route_name, headers, body)
    if isinstance(route, Answer):
        return route
    upload_id = uuid.uuid4().hex
    post = presigned_post(
        get_settings().require("results_bucket"),
        report_key(f"uploads/{upload_id}"),
        UPLOAD_EXPIRES_SECONDS,
        MAX_UPLOAD_BYTES,
    )
    logger.info("report upload started", route=route.name, upload_id=upload_id)
    return Answer(
        201,
        {
            "status": "upload",
            "upload_id": upload_id,
            "upload_url": post["url"],
            "upload_fields": post["fields"],
            "max_bytes": MAX_UPLOAD_BYTES,
            "expires_in": UPLOAD_EXPIRES_SECONDS,
            "complete_path": f"/reports/junit/{route.name}/uploads/{upload_id}",
        },
    )


def finish_upload(route_name: str, upload_id: str, headers: Mapping[str, str], body: bytes) -> Answer:
    """POST /reports/junit/{route}/uploads/{id}: the upload is done; the body (JSON, may be empty) is the context."""
    headers = {name.lower(): value for name, value in headers.items()}
    route = _refusal(route_name, headers, body)
    if isinstance(route, Answer):
        return route
    if not _UPLOAD_ID.match(upload_id):
        return Answer(404, {"status": "unknown_upload", "message": "no such upload"})
    try:
        context = _context(_completion_body(body), UploadCompletion)
    except InvalidPayload as exc:
        return _invalid(route_name, exc)
    if not isinstance(context, UploadCompletion) or context.upload_id != upload_id:
        return _invalid(route_name, InvalidPayload("the signed body names another upload than the URL"))
    key = report_key(f"uploads/{upload_id}")
    try:
        uploaded = report_exists(get_settings().require("results_bucket"), key)
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(route_name, "looking up the upload", exc)
    if not uploaded:
        return Answer(409, {"status": "not_uploaded", "message": f"nothing was uploaded for upload {upload_id}"})
    return _enqueue(context.job(route, f"upload:{upload_id}", key), upload_id=upload_id)

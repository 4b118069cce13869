"""JUnit reports in: verify, check, store in S3, enqueue a junit job for the named route.

Signed like the generic hook (`X-Testrelay-Signature: sha256=<HMAC-SHA256(generic secret, raw body)>`).
Small reports come in the request and are checked before anything is stored or queued; large ones go
to S3 through a size-capped pre-signed POST (API Gateway takes at most 10 MB) and are checked when the job parses
them, which fails the job with the reason before anything is written to a target.
"""

from __future__ import annotations

import contextlib
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
from testrelay.aws.shard_book import ShardCountConflict, ShardsClosed
from testrelay.ci.base import load_json_object
from testrelay.ci.generic import GenericProvider
from testrelay.errors import AuthenticationFailed, InvalidPayload
from testrelay.junit import parse_report
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job
from testrelay.models.job_message import job_id_for
from testrelay.models.routes import RouteAction
from testrelay.models.shards import MAX_SHARDS, ShardLabel, ShardRefused
from testrelay.observability import correlate, logger, metrics
from testrelay.relay.intake import Answer
from testrelay.relay.shards import accept_shard, closed_message
from testrelay.relay.shards import book as shard_book
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

    def _event(self, route: RouteAction, delivery: str) -> CiEvent:
        return CiEvent(
            provider="junit",
            event="junit_report",
            delivery_key=delivery,
            repository=self.repository or f"junit/{route.name}",
            branch=self.branch,
            commit_sha=self.sha,
            run_url=self.run_url,
            pipeline_name=self.pipeline_name,
        )

    def job(self, route: RouteAction, default_delivery: str, key_of: str | None = None) -> Job:
        delivery = self.delivery_id or default_delivery
        job_id = job_id_for("junit", delivery, route.name)
        event = self._event(route, delivery)
        return Job(id=job_id, kind="junit", route=route, event=event, report_key=key_of or report_key(job_id))

    def collection_job(self, route: RouteAction, run_key: str) -> Job:
        """The job gathering every report of one sharded CI run: its id derives from route and run key
        (each report finds the same job); the labels of the report that arrives first name the run."""
        job_id = job_id_for("junit-shards", run_key, route.name)
        return Job(id=job_id, kind="junit", route=route, event=self._event(route, f"run:{run_key}"), run_key=run_key)


class UploadCompletion(ReportContext):
    """The signed body of an upload's completion. It names its upload: the URL path is not covered by
    the signature, so a captured completion cannot be replayed against another upload. A shard of a
    sharded CI run says its run key, shard and attempt here (checked by ShardLabel)."""

    upload_id: str
    run_key: Any = None
    shard: Any = None
    attempt: Any = None


class RunDone(ReportContext):
    """The signed body of a run key's "done" call: every report of the CI run was sent."""

    run_key: Any
    shards: Any = None


# A report of a sharded CI run carries these in the query; the signature then covers them (see
# `signed_shard_line`), so only the secret's holder decides which run a report joins.
SHARD_QUERY = ("run_key", "shard", "attempt")


def signed_shard_line(query: Mapping[str, str]) -> bytes:
    """The run key, shard and attempt exactly as sent, one per line (empty when absent), which the
    signature covers before the body: `HMAC(secret, run_key \n shard \n attempt \n body)`."""
    return "".join(f"{query.get(name, '')}\n" for name in SHARD_QUERY).encode("utf-8", "surrogatepass")


def _context(values: Mapping[str, Any], model: type[ReportContext] = ReportContext) -> ReportContext:
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'context'}: {e['msg']}" for e in exc.errors())
        raise InvalidPayload(f"report context: {problems}") from exc


def _refusal(route_name: str, headers: Mapping[str, str], body: bytes) -> Answer | RouteAction:
    """The route to write to, or the answer refusing the request (`body`: what the signature covers)."""
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


def _label(run_key: Any, shard: Any, attempt: Any) -> ShardLabel:
    try:
        return ShardLabel.of(run_key, shard, attempt)
    except ShardRefused as exc:
        raise InvalidPayload(str(exc)) from None


def _accept_shard(job: Job, label: ShardLabel, key: str, identity: str, cases: int | None) -> Answer:
    """A sharded run's report in its slot, then its job queued (every report queues the same job:
    whichever comes first starts it, the others start nothing)."""
    assert job.run_key is not None
    try:
        answer = accept_shard(job, label, key, identity, cases)
    except ShardsClosed as exc:
        held = (exc.record.get("shards") or {}).get(label.slot(identity)) or {}
        if held.get("key") == key:
            # The very upload the sealed set holds, sent again (a CI step retried after a lost answer).
            already = {"run_key": job.run_key, "shard": label.shard, "attempt": label.attempt, "gathered": True}
            return Answer(202, {"status": "accepted", "jobs": [job.id], **already})
        logger.warning("late shard refused", job_id=job.id, run_key=job.run_key, shard=label.shard)
        metrics.add_metric(name="LateShardsRefused", unit=MetricUnit.Count, value=1)
        with contextlib.suppress(ClientError, BotoCoreError):
            shard_book().note_late(job.id, label.slot(identity))
        return Answer(
            409, {"status": "run_closed", "jobs": [job.id], "message": closed_message(job.run_key, exc.record)}
        )
    except ShardCountConflict as exc:
        return _invalid(job.route.name, InvalidPayload(f"run key {job.run_key!r}: {exc}"))
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(job.route.name, "recording the shard", exc)
    return _enqueue(job, **answer, **({"cases": cases} if cases is not None else {}))


def receive_report(route_name: str, headers: Mapping[str, str], query: Mapping[str, str], body: bytes) -> Answer:
    """POST /reports/junit/{route}: the report is the body."""
    headers = {name.lower(): value for name, value in headers.items()}
    sharded = any(name in query for name in SHARD_QUERY)
    route = _refusal(route_name, headers, signed_shard_line(query) + body if sharded else body)
    if isinstance(route, Answer):
        return route
    try:
        label = _label(*(query.get(name) for name in SHARD_QUERY)) if sharded else None
        context = _context({k: v for k, v in query.items() if k not in SHARD_QUERY})
        if context.delivery_id:
            # The query is not signed: a dedupe key from it would let a captured report be replayed as new.
            raise InvalidPayload(
                "delivery_id is not accepted in the query (it is not signed); a report sent in the request "
                "dedupes on its content, an uploaded one on its signed completion"
            )
        cases = sum(1 for _ in parse_report(io.BytesIO(body), route.junit))
    except InvalidPayload as exc:
        return _invalid(route_name, exc)
    digest = hashlib.sha256(body).hexdigest()
    if label is not None:
        job = context.collection_job(route, label.run_key)
        # Each upload its own object: a slot replaced later never changes a report a merge may be reading.
        key = report_key(f"shards/{job.id}/{label.slot(digest)}-{digest[:16]}")
    else:
        job = context.job(route, "sha256:" + digest)
        assert job.report_key is not None
        key = job.report_key
    try:
        put_report(get_settings().require("results_bucket"), key, body)
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(route_name, "storing the report", exc)
    if label is not None:
        return _accept_shard(job, label, key, digest, cases)
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
    if context.run_key is not None or context.shard is not None or context.attempt is not None:
        try:
            label = _label(context.run_key, context.shard, context.attempt)
        except InvalidPayload as exc:
            return _invalid(route_name, exc)
        labels = _context(context.model_dump(include=set(ReportContext.model_fields), exclude_none=True))
        identity = context.delivery_id or upload_id
        answer = _accept_shard(labels.collection_job(route, label.run_key), label, key, identity, None)
        answer.body["upload_id"] = upload_id
        return answer
    return _enqueue(context.job(route, f"upload:{upload_id}", key), upload_id=upload_id)


def finish_run(route_name: str, headers: Mapping[str, str], body: bytes) -> Answer:
    """POST /reports/junit/{route}/done: every report of the run key was sent; the job gathers them now
    (without waiting for the settle window). Signed JSON body: `run_key`, optional `shards` (the count)."""
    headers = {name.lower(): value for name, value in headers.items()}
    route = _refusal(route_name, headers, body)
    if isinstance(route, Answer):
        return route
    try:
        done = _context(_completion_body(body), RunDone)
        assert isinstance(done, RunDone)
        count = None
        if done.shards is not None:
            if isinstance(done.shards, bool) or not isinstance(done.shards, int) or not 1 <= done.shards <= MAX_SHARDS:
                raise InvalidPayload(f"shards must be the number of shards, 1 to {MAX_SHARDS}")
            count = done.shards
        label = _label(done.run_key, None, None)
    except InvalidPayload as exc:
        return _invalid(route_name, exc)
    labels = _context(done.model_dump(include=set(ReportContext.model_fields), exclude_none=True))
    job = labels.collection_job(route, label.run_key)
    try:
        shard_book().mark_done(job.id, label.run_key, route.name, count)
        record = shard_book().get(job.id) or {}
    except ShardsClosed as exc:
        return Answer(
            409, {"status": "run_closed", "jobs": [job.id], "message": closed_message(label.run_key, exc.record)}
        )
    except ShardCountConflict as exc:
        return _invalid(route_name, InvalidPayload(f"run key {label.run_key!r}: {exc}"))
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(route_name, "recording the done call", exc)
    return _enqueue(
        job,
        run_key=label.run_key,
        done=True,
        received=len(record.get("shards") or {}),
        expected=record.get("expected"),
    )

"""The generic hook: any CI can call it with one signed `curl` after its run.

Body (JSON, documented in the README):
    {"repository": "org/repo", "outcome": "success", "branch": "main", "commit_sha": "...",
     "pipeline_id": "...", "pipeline_name": "...", "run_number": 12, "run_url": "https://...",
     "event": "pipeline", "delivery_id": "...", "testsigma_run_id": 4711}
Only `repository` and `outcome` are required. Header: `X-Testrelay-Signature: sha256=<hex
HMAC-SHA256(secret, raw body)>`. Without `delivery_id` the body itself is the dedupe key, so
re-sending the same body never starts a second job. With `testsigma_run_id` (a run the CI step
started itself) the job syncs that run's results instead of triggering the route's plan.
"""

from __future__ import annotations

from collections.abc import Mapping

from testrelay.ci.base import Ignored, WebhookCredential, body_digest, load_json_object, verify_hmac_sha256
from testrelay.errors import InvalidPayload
from testrelay.models.ci_event import CiEvent

SIGNATURE_HEADER = "x-testrelay-signature"


class GenericProvider:
    name = "generic"
    invalid_payload_status = 400

    def authenticate(self, headers: Mapping[str, str], body: bytes, credential: WebhookCredential) -> None:
        verify_hmac_sha256(credential.require_secret(self.name), body, headers.get(SIGNATURE_HEADER), prefix="sha256=")

    def parse(self, headers: Mapping[str, str], body: bytes) -> CiEvent | Ignored:
        # Its pydantic model is imported here, off the cold path of every other provider's webhook.
        from pydantic import ValidationError

        from testrelay.ci.generic_body import GenericHookBody

        try:
            hook = GenericHookBody.model_validate(load_json_object(body))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
            raise InvalidPayload(f"generic hook body: {problems}") from exc
        return CiEvent(
            provider=self.name,
            event=hook.event,
            delivery_key=hook.delivery_id or body_digest("generic", body),
            repository=hook.repository,
            branch=hook.branch,
            commit_sha=hook.commit_sha,
            pipeline_id=hook.pipeline_id,
            pipeline_name=hook.pipeline_name,
            run_number=hook.run_number,
            run_url=hook.run_url,
            outcome=hook.outcome,
            testsigma_run_id=hook.testsigma_run_id,
        )

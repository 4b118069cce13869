"""Errors the relay raises on purpose.

Task Lambdas let these escape: the Lambda runtime reports the class name as `errorType`, and the
state machine's Retry/Catch rules match on those names, so renaming a class changes the ASL contract.
"""


class RelayError(Exception):
    """Base of every deliberate error; messages never contain secrets."""


class ConfigurationError(RelayError):
    """A setting, secret or routes file is missing or invalid: retrying will not help."""


class InvalidPayload(RelayError):
    """A webhook body or job message does not parse; the message names what is wrong."""


class AuthenticationFailed(RelayError):
    """A webhook signature or token does not match."""


class VendorError(RelayError):
    """A vendor API call did not succeed."""

    code: str | None = None
    """The vendor's own error code where its answer names one (BrowserStack's `error`)."""

    def __init__(self, vendor: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{vendor}: {message}")
        self.vendor = vendor
        self.status = status


class VendorThrottled(VendorError):
    """The vendor asked us to slow down (429, or Testsigma TM's 500 "rate limit exceeded")."""


class VendorUnavailable(VendorError):
    """Transient failure: 5xx, time-out or connection error. Safe to retry later."""


class VendorOutcomeUnknown(VendorError):
    """A non-idempotent call (e.g. triggering a run) may or may not have happened: a time-out or 5xx
    after the request was sent. Never retried automatically, because a retry could start a second run."""


class VendorRejected(VendorError):
    """The vendor refused the request (4xx other than throttling): retrying as-is will not help."""


class VendorPagingStalled(VendorRejected):
    """A paged list does not advance (the same page or `next` again): the vendor ignores the paging
    parameter the client sends. Raised instead of looping until the Lambda times out."""


class VendorAuthFailed(VendorRejected):
    """The vendor refused our credentials (401/403)."""


class RunNotFinished(RelayError):
    """Results were asked for a Testsigma run that has not completed."""

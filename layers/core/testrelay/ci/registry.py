"""Provider name (the {provider} in /webhooks/{provider}) to its module."""

from testrelay.ci.base import CiProvider
from testrelay.ci.github import GitHubProvider

PROVIDERS: dict[str, CiProvider] = {"github": GitHubProvider()}

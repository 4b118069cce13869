"""Provider name (the {provider} in /webhooks/{provider}) to its module."""

from testrelay.ci.azure_devops import AzureDevOpsProvider
from testrelay.ci.base import CiProvider
from testrelay.ci.bitbucket import BitbucketProvider
from testrelay.ci.circleci import CircleCiProvider
from testrelay.ci.generic import GenericProvider
from testrelay.ci.github import GitHubProvider
from testrelay.ci.gitlab import GitLabProvider
from testrelay.ci.jenkins import JenkinsProvider

PROVIDERS: dict[str, CiProvider] = {
    provider.name: provider
    for provider in (
        GitHubProvider(),
        GitLabProvider(),
        CircleCiProvider(),
        JenkinsProvider(),
        AzureDevOpsProvider(),
        BitbucketProvider(),
        GenericProvider(),
    )
}

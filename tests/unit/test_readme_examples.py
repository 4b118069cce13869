"""The README's routes example is what a newcomer copies: it must load as written."""

from __future__ import annotations

import re
from pathlib import Path

from testrelay.routing import parse_routes

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_routes_example_loads_with_every_key_it_shows() -> None:
    # Given the complete example of the routes file in the README
    examples = [block for block in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S) if "routes:" in block]
    assert examples, "the README lost its routes example"
    # When it is loaded like the relay loads a routes file
    config = parse_routes(examples[0], "README example")
    # Then it is valid, and the options it documents are the ones it sets
    route = config.routes[0]
    assert {target.kind for target in route.targets} == {"testsigma_tm", "browserstack_tm", "testsigma_override"}
    assert route.match.forks is False
    assert route.junit.trcli_ids is False

"""TestRail CLI (trcli) case ids, for teams that keep the reports they wrote for trcli.

trcli reads a TestRail case id from a test's name (`--case-matcher name`) as a word of its own, set off by
spaces, underscores or brackets: `C123 checkout`, `test_C123_checkout`, `checkout_C123()` (JUnit 5),
`[C123] checkout`, `[C123, C456] checkout`, `C123_C456_checkout`; or from the testcase property `test_id`
(`--case-matcher property`): `C123`, `123`, `C123, C456`. Either way the id becomes the token the route's
`junit.trcli_id_format` makes of it (`C123` by default), for the targets' matching to look up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PROPERTY = "test_id"
# A C-number as a word of its own: after the start, a space, an underscore, a bracket or a comma; before
# the end, one of those, or the parentheses JUnit 5 appends to method names.
_IN_NAME = re.compile(r"(?:^|(?<=[\s_\[,]))[Cc](\d{1,18})(?=$|[\s_\](,])")
_IN_PROPERTY = re.compile(r"^[Cc]?(\d{1,18})$")


def ids_in_name(name: str, id_format: str) -> list[str]:
    return [id_format.format(id=int(number)) for number in _IN_NAME.findall(name)]


def ids_in_property(values: Iterable[str], id_format: str) -> list[str]:
    ids: list[str] = []
    for value in values:
        for part in value.split(","):
            number = _IN_PROPERTY.match(part.strip())
            if number:
                ids.append(id_format.format(id=int(number.group(1))))
    return ids

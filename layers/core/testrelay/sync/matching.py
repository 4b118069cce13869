"""Which target test case(s) a Testsigma result belongs to.

Modes are tried in the target's `match_by` order and the first one that finds anything wins:
- `case_map`: the routes file maps a Testsigma test case id to one or more target case ids;
- `id_token`: ids written in the Testsigma case name (`TC-123`, `[TC-123]`; `id_pattern`), several allowed;
- `field`: target cases carrying the Testsigma case id in a label/tag `<match_field>:<id>` or in the
  custom field `<match_field>`;
- `title`: the target case whose title equals the Testsigma case name exactly.
JUnit results (testrelay.junit) have no Testsigma id, so `case_map` never matches them; the ids a
JUnit case declares in its properties count for `id_token` (after those in its name) and take the
Testsigma id's place for `field`; `title` compares the testcase's `name`.
Modes other than `case_map` look at the target's case list, fetched lazily once per write-back.
A result no mode matches is unmatched: counted and listed, never dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from testrelay.models.execution import CaseResult

MatchMode = Literal["case_map", "id_token", "field", "title"]
DEFAULT_ID_PATTERN = r"\bTC-\d+\b"


def _default_modes() -> list[MatchMode]:
    return ["case_map", "id_token"]


class CaseMatching(BaseModel):
    case_map: dict[int, str | list[str]] = Field(
        default_factory=dict, description="Testsigma test case id -> target test case id(s)"
    )
    match_by: list[MatchMode] = Field(default_factory=_default_modes, min_length=1)
    id_pattern: str = Field(
        default=DEFAULT_ID_PATTERN, description="ids in the Testsigma case name; group 1 if the pattern has one"
    )
    match_field: str | None = Field(default=None, description="label prefix or custom field naming the Testsigma id")

    @field_validator("id_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _modes_configured(self) -> CaseMatching:
        if "field" in self.match_by and not self.match_field:
            raise ValueError("match_by includes 'field' but match_field is not set")
        if self.match_by == ["case_map"] and not self.case_map:
            raise ValueError("match_by is only case_map but case_map is empty: nothing could match")
        return self

    def mapped_ids(self, case_id: int) -> list[str]:
        value = self.case_map.get(case_id)
        if value is None:
            return []
        return [value] if isinstance(value, str) else list(value)


_LABEL_NAME_KEYS = ("name", "title", "label", "value")


def label_names(raw: Any) -> tuple[str, ...]:
    """A case's labels/tags as text, whatever their shape: strings, or objects such as Testsigma TM's
    `{id, name, ...}` (the name is taken; `title`/`label`/`value` where there is no name)."""
    if not isinstance(raw, list | tuple):
        return ()
    names: list[str] = []
    for label in raw:
        if isinstance(label, str):
            names.append(label)
        elif isinstance(label, Mapping):
            found = next((label[key] for key in _LABEL_NAME_KEYS if isinstance(label.get(key), str | int)), None)
            if found is not None:
                names.append(str(found))
    return tuple(names)


def custom_field_values(raw: Any) -> dict[str, tuple[str, ...]]:
    """A case's custom fields as name -> values, from BrowserStack's documented list of
    `{field_name, value}` or from a `{name: value}` dict; a list value gives several values."""
    pairs: list[tuple[Any, Any]] = []
    if isinstance(raw, Mapping):
        pairs = list(raw.items())
    elif isinstance(raw, list | tuple):
        for item in raw:
            if isinstance(item, Mapping):
                name = item.get("field_name", item.get("name"))
                pairs.append((name, item.get("value", item.get("field_value"))))
    fields: dict[str, tuple[str, ...]] = {}
    for name, value in pairs:
        if name is None or value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        fields[str(name)] = fields.get(str(name), ()) + tuple(str(v) for v in values if v is not None)
    return fields


@dataclass(frozen=True)
class TargetCase:
    """A test case of a target, reduced to what matching looks at."""

    id: str
    key: str
    """The id people write in case names (Testsigma TM human id, BrowserStack identifier)."""
    title: str = ""
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    labels: tuple[str, ...] = ()


@dataclass
class CaseCatalog:
    """Indexes of a target's case list: only those the configured modes need are built."""

    by_key: dict[str, str] = field(default_factory=dict)
    by_field: dict[str, list[str]] = field(default_factory=dict)
    by_title: dict[str, list[str]] = field(default_factory=dict)
    size: int = 0

    @classmethod
    def build(cls, cases: Iterable[TargetCase], modes: Iterable[MatchMode], match_field: str | None) -> CaseCatalog:
        modes = set(modes)
        catalog = cls()
        prefix = f"{match_field}:" if match_field else None
        for case in cases:
            catalog.size += 1
            if "id_token" in modes:
                catalog.by_key[case.key] = case.id
            if "title" in modes and case.title:
                catalog.by_title.setdefault(case.title, []).append(case.id)
            if "field" in modes and match_field and prefix:
                values = list(case.fields.get(match_field, ()))
                values += [label[len(prefix) :] for label in case.labels if label.startswith(prefix)]
                for value in values:
                    catalog.by_field.setdefault(str(value).strip(), []).append(case.id)
        return catalog


Lookup = tuple[tuple[MatchMode, tuple[str, ...]], ...]
"""What a result is looked up by, mode by mode in `match_by` order: `case_map` carries the ids it maps
to (no catalog needed), the other modes the keys they look for in the catalog."""


class CaseMatcher:
    def __init__(self, config: CaseMatching, load_catalog: Callable[[], CaseCatalog]) -> None:
        self.config = config
        self._pattern = re.compile(config.id_pattern)
        self._load_catalog = load_catalog
        self._catalog: CaseCatalog | None = None
        self._loading: Future[CaseCatalog] | None = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def catalog(self) -> CaseCatalog:
        if self._catalog is None:
            self._catalog = self._loading.result() if self._loading is not None else self._load_catalog()
        return self._catalog

    @property
    def catalog_loaded(self) -> bool:
        return self._catalog is not None or (self._loading is not None and self._loading.done())

    def load_in_background(self) -> None:
        """Starts fetching the catalog on a thread of its own (once), so what does not need it (reading
        and parsing the results) goes on meanwhile; `catalog` then waits for it."""
        if self._catalog is None and self._loading is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog")
            self._loading = self._pool.submit(self._load_catalog)

    def close(self) -> None:
        """Waits for a background fetch, so none outlives the write-back that asked for it."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def tokens(self, name: str) -> list[str]:
        found = [m.group(1) if self._pattern.groups else m.group(0) for m in self._pattern.finditer(name)]
        return list(dict.fromkeys(found))

    def match(self, result: CaseResult) -> list[str]:
        """The target case ids of a result, in a stable order; empty when unmatched. A mode's keys are
        taken only if the modes before it found nothing (`lookup` takes them all, not having the catalog)."""
        for mode in self.config.match_by:
            found = self._by(mode, self._keys(mode, result))
            if found:
                return list(dict.fromkeys(found))
        return []

    def lookup(self, result: CaseResult) -> Lookup:
        """What `resolve` needs of the result, taken without the catalog: every mode's keys, since which
        mode finds anything is known only with the catalog (unless `case_map` maps the result)."""
        found: list[tuple[MatchMode, tuple[str, ...]]] = []
        for mode in self.config.match_by:
            keys = self._keys(mode, result)
            found.append((mode, keys))
            if mode == "case_map" and keys:
                break
        return tuple(found)

    def _keys(self, mode: MatchMode, result: CaseResult) -> tuple[str, ...]:
        if mode == "case_map":
            return tuple(self.config.mapped_ids(result.case_id)) if result.case_id else ()
        if mode == "id_token":
            return tuple(dict.fromkeys([*self.tokens(result.name), *(result.ids or ())]))
        if mode == "field":
            return tuple(result.ids) if result.ids else (str(result.case_id),)
        return (result.name,)

    @staticmethod
    def needs_catalog(lookup: Lookup) -> bool:
        """Whether resolving it reads the catalog (a mode before that may already have matched)."""
        for mode, keys in lookup:
            if keys:
                return mode != "case_map"
        return False

    def resolve(self, lookup: Lookup) -> list[str]:
        for mode, keys in lookup:
            found = self._by(mode, keys)
            if found:
                return list(dict.fromkeys(found))
        return []

    def _by(self, mode: MatchMode, keys: tuple[str, ...]) -> list[str]:
        if not keys:
            return []
        if mode == "case_map":
            return list(keys)
        if mode == "id_token":
            by_key = self.catalog.by_key
            return [by_key[token] for token in keys if token in by_key]
        if mode == "field":
            by_field = self.catalog.by_field
            return [case for value in keys for case in by_field.get(value, [])]
        return self.catalog.by_title.get(keys[0], [])

"""Loading and validating the routes file, and writing the index the webhook reads (routes_index)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from testrelay.errors import ConfigurationError
from testrelay.models.routes import RoutesConfig
from testrelay.routes_index import INDEX_FORMAT, digest, index_path

_cache: dict[Path, tuple[float, RoutesConfig]] = {}


def parse_routes(text: str, source: str = "routes file") -> RoutesConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{source} is not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{source}: the top level must be a mapping with a 'routes' list")
    try:
        return RoutesConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigurationError(f"{source} is invalid:\n" + _describe(exc, raw)) from exc


def load_routes(path: str | os.PathLike[str]) -> RoutesConfig:
    """Parse and validate the routes file, re-reading it only when it changes on disk."""
    file = Path(path)
    try:
        mtime = file.stat().st_mtime
    except OSError as exc:
        raise ConfigurationError(f"routes file {file} cannot be read: {exc.strerror}") from exc
    cached = _cache.get(file)
    if cached and cached[0] == mtime:
        return cached[1]
    config = parse_routes(file.read_text(encoding="utf-8"), source=str(file))
    _cache[file] = (mtime, config)
    return config


def _describe(exc: ValidationError, raw: dict[str, Any]) -> str:
    """One line per problem, naming the route (by name when it has one) and the key."""
    routes_value = raw.get("routes")
    routes: list[Any] = routes_value if isinstance(routes_value, list) else []
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "routes" and isinstance(loc[1], int):
            index = loc[1]
            entry = routes[index] if index < len(routes) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            where = f"route {name!r} (routes[{index}])" if name else f"routes[{index}]"
            loc = loc[2:]
        key = ".".join(str(part) for part in loc if not str(part).startswith("function-"))
        subject = " ".join(part for part in (where, f"key {key!r}" if key else "") if part) or "top level"
        lines.append(f"  - {subject}: {error['msg']}")
    return "\n".join(lines)


def index_document(config: RoutesConfig, source_digest: str) -> dict[str, Any]:
    """What the webhook needs of a validated routes file (see testrelay.routes_index)."""
    routes = [
        {
            "name": route.name,
            "match": route.match.model_dump(mode="json"),
            "action": route.action().model_dump(mode="json"),
        }
        for route in config.routes
    ]
    return {"format": INDEX_FORMAT, "source_sha256": source_digest, "routes": routes}


def write_index(routes_file: str | os.PathLike[str]) -> Path:
    """Validate the routes file and write its index beside it (atomically); the index's path."""
    file = Path(routes_file)
    try:
        source = file.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"routes file {file} cannot be read: {exc.strerror}") from exc
    config = parse_routes(source.decode("utf-8", "replace"), source=str(file))
    target = index_path(file)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(json.dumps(index_document(config, digest(source)), indent=1) + "\n", encoding="utf-8")
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ConfigurationError(f"routes index {target} cannot be written: {exc.strerror}") from exc
    return target

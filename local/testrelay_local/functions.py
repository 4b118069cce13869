"""Loading the project's Lambda handlers in-process, the way the Lambda runtime would."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Handler = Callable[[Any, Any], Any]
ROOT = Path(__file__).resolve().parents[2]


def load_handler(code_uri: str | Path, handler: str = "app.lambda_handler") -> Handler:
    """Import `<code_uri>/<module>.py` under a unique name (every function's module is called `app`)."""
    module_name, _, attribute = handler.rpartition(".")
    directory = (ROOT / code_uri).resolve()
    source = directory / f"{module_name.replace('.', '/')}.py"
    unique = f"testrelay_fn_{directory.name}_{module_name.replace('.', '_')}"
    module = sys.modules.get(unique)
    if module is None:
        spec = importlib.util.spec_from_file_location(unique, source)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load handler module {source}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        spec.loader.exec_module(module)
    function: Handler = getattr(module, attribute)
    return function

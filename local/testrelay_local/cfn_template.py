"""Reading a CloudFormation/SAM template: short-form tags, intrinsic functions, conditions, ordering.

Just enough of CloudFormation to provision the local stack from the same template.yaml that is
deployed: parameters (with overrides), pseudo parameters, Mappings, Conditions, Ref, Fn::GetAtt,
Fn::Sub, Fn::Join, Fn::If, Fn::Select, Fn::Split, Fn::FindInMap, Fn::Base64 and the condition
functions. Anything else is reported, not guessed.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class TemplateError(ValueError):
    """The template uses something this reader does not support, or is inconsistent."""


class _NoValue:
    """The value of ``Ref: AWS::NoValue``: removes the property (or list item) holding it."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns CloudFormation short forms (!Ref, !GetAtt, !Sub ...) into long forms."""


def _construct_short_form(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise TemplateError(f"unexpected YAML node for !{tag_suffix}: {node!r}")
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # "!GetAtt Res.Attr.Nested" is Fn::GetAtt [Res, "Attr.Nested"].
        value = value.split(".", 1)
    key = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    return {key: value}


CfnLoader.add_multi_constructor("!", _construct_short_form)


def load_template(path: Path) -> dict[str, Any]:
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=CfnLoader)  # noqa: S506 - safe loader subclass
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources mapping)")
    return document


def references(value: Any) -> set[str]:
    """Logical ids and parameter names `value` refers to (Ref, Fn::GetAtt, Fn::Sub variables)."""
    return {name for name in _references(value) if not name.startswith("AWS::")}


def _references(value: Any) -> set[str]:
    if isinstance(value, list):
        return set().union(*(_references(item) for item in value))
    if not isinstance(value, dict):
        return set()
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref" and isinstance(argument, str):
            return {argument}
        if key == "Fn::GetAtt" and isinstance(argument, list) and argument:
            return {str(argument[0])}
        if key == "Fn::Sub":
            return _sub_references(argument)
    return set().union(*(_references(item) for item in value.values()))


def _sub_references(argument: Any) -> set[str]:
    if isinstance(argument, str):
        text, variables = argument, {}
    elif isinstance(argument, list) and len(argument) == 2:
        text, variables = argument[0], argument[1]
    else:
        raise TemplateError(f"malformed Fn::Sub: {argument!r}")
    names = {
        name.split(".", 1)[0]
        for name in _SUB_VARIABLE.findall(text)
        if not name.startswith("!") and name not in variables
    }
    return names | _references(list(variables.values()))


def dependency_order(resources: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Logical ids in an order where every resource comes after those it refers to or DependsOn."""
    depends: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        explicit = resource.get("DependsOn", [])
        explicit_ids = {explicit} if isinstance(explicit, str) else set(explicit)
        depends[logical_id] = (references(resource) | explicit_ids) & resources.keys()
    ordered: list[str] = []
    visiting: list[str] = []

    def visit(logical_id: str) -> None:
        if logical_id in ordered:
            return
        if logical_id in visiting:
            cycle = [*visiting[visiting.index(logical_id) :], logical_id]
            raise TemplateError(f"circular dependency: {' -> '.join(cycle)}")
        visiting.append(logical_id)
        for dependency in sorted(depends[logical_id]):
            visit(dependency)
        visiting.pop()
        ordered.append(logical_id)

    for logical_id in resources:
        visit(logical_id)
    return ordered


class Resolver:
    """Evaluates intrinsic functions against parameters, pseudo parameters and provisioned resources."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        parameters: Mapping[str, Any],
        pseudo_parameters: Mapping[str, Any],
    ) -> None:
        self._mappings: Mapping[str, Any] = template.get("Mappings", {})
        self._condition_definitions: Mapping[str, Any] = template.get("Conditions", {})
        self._conditions: dict[str, bool] = {}
        self._values: dict[str, Any] = {"AWS::NoValue": NO_VALUE, **pseudo_parameters, **parameters}
        self._attributes: dict[str, Callable[[str], Any]] = {}
        self._intrinsics: Mapping[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::If": self._if,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": lambda argument: base64.b64encode(self.text(argument).encode()).decode(),
            "Fn::Equals": self._equals,
            "Fn::And": lambda argument: all(self._booleans(argument)),
            "Fn::Or": lambda argument: any(self._booleans(argument)),
            "Fn::Not": lambda argument: not next(iter(self._booleans(argument))),
            "Condition": self.condition,
        }

    def bind(self, logical_id: str, ref: Any, attribute: Callable[[str], Any]) -> None:
        """Makes `Ref logical_id` yield `ref` and `Fn::GetAtt logical_id.X` yield `attribute(X)`."""
        self._values[logical_id] = ref
        self._attributes[logical_id] = attribute

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self._condition_definitions:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(self._condition_definitions[name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            function = self._intrinsics.get(key)
            if function is not None:
                return function(argument)
            if key.startswith("Fn::"):
                raise TemplateError(f"intrinsic function {key} is not supported locally")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def text(self, value: Any) -> str:
        """`value` resolved and rendered the way CloudFormation renders scalars into strings."""
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, dict | list):
            raise TemplateError(f"expected a scalar, got {resolved!r}")
        return str(resolved)

    def _ref(self, name: Any) -> Any:
        if name not in self._values:
            raise TemplateError(f"Ref to {name}, which is neither a parameter nor a provisioned resource")
        return self._values[name]

    def _get_att(self, argument: Any) -> Any:
        logical_id, attribute = (self.resolve(part) for part in argument)
        if logical_id not in self._attributes:
            raise TemplateError(f"Fn::GetAtt on {logical_id}, which is not a provisioned resource")
        return self._attributes[logical_id](attribute)

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, raw_variables = argument
            variables = {name: self.text(item) for name, item in raw_variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return variables[name]
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self.text({"Fn::GetAtt": [logical_id, attribute]})
            return self.text({"Ref": name})

        return _SUB_VARIABLE.sub(substitute, text)

    def _join(self, argument: Any) -> str:
        delimiter, items = argument
        return str(delimiter).join(self.text(item) for item in self.resolve(items))

    def _if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _select(self, argument: Any) -> Any:
        index, items = argument
        return self.resolve(items)[int(self.text(index))]

    def _split(self, argument: Any) -> list[str]:
        delimiter, source = argument
        return self.text(source).split(str(delimiter))

    def _find_in_map(self, argument: Any) -> Any:
        map_name, top_key, second_key = (self.text(part) for part in argument)
        try:
            return self._mappings[map_name][top_key][second_key]
        except KeyError as exc:
            raise TemplateError(f"Fn::FindInMap: no {map_name}/{top_key}/{second_key}") from exc

    def _equals(self, argument: Any) -> bool:
        left, right = argument
        return self.text(left) == self.text(right)

    def _booleans(self, argument: Iterable[Any]) -> Iterator[bool]:
        return (bool(self.resolve(item)) for item in argument)

"""Read a YAML file into a pydantic model, and say exactly where any problem is.

Operators write ``sources.yaml`` and ``use.yaml`` by hand, so every mistake is reported as
``<file>: line <n>: <yaml.path>: <what is wrong>``. Repeated keys are refused (PyYAML would
silently keep the last one). This module is a leaf: it imports nothing else from Candour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class _RepeatedKey(Exception):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(f"line {line}: key {key!r} repeats line {first}")


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses a key repeated in one mapping."""


def _no_repeats(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise _RepeatedKey(key, line, seen[key])
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_repeats)


def parse_model(
    text: str,
    model: type[Model],
    where: str,
    error: type[Exception],
    *,
    top_level_keys: Sequence[str] = (),
) -> Model:
    """Validate YAML ``text`` as ``model``; raise ``error`` naming ``where``, line and path."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except _RepeatedKey as exc:
        raise error(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{where}: {at}not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        keys = f" of the keys {', '.join(top_level_keys)}" if top_level_keys else ""
        raise error(f"{where}: must be a mapping{keys}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(describe(exc, root, where, top_level_keys)) from None


def describe(
    exc: ValidationError, root: yaml.Node | None, where: str, top_level_keys: Sequence[str] = ()
) -> str:
    """One line for the first problem pydantic found: file, line, YAML path and message."""
    first = exc.errors()[0]
    loc = tuple(part for part in first["loc"] if not _internal(part))
    kind = first["type"]
    line = line_of(root, loc, key_only=kind in ("extra_forbidden", "missing"))
    if kind == "extra_forbidden":
        allowed = (
            f" (allowed: {', '.join(top_level_keys)})" if top_level_keys and len(loc) == 1 else ""
        )
        message = f"unknown key {loc[-1]!r}{allowed}; check the spelling against the docs"
    elif kind == "missing":
        message = "this required key is missing"
        line = None if len(loc) == 1 else line_of(root, loc[:-1], key_only=True)
    else:
        message = str(first["msg"]).removeprefix("Value error, ")
    at = f"line {line}: " if line is not None else ""
    return f"{where}: {at}{yaml_path(loc)}: {message}"


def yaml_path(loc: Sequence[Any]) -> str:
    """``('sources', 0, 'identity')`` as ``sources[0].identity``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def line_of(root: yaml.Node | None, loc: Sequence[Any], *, key_only: bool) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (its key line when ``key_only``)."""
    if root is None or not loc:
        return None
    node: yaml.Node = root
    key_line: int | None = None
    for depth, part in enumerate(loc):
        last = depth == len(loc) - 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    key_line = int(key_node.start_mark.line) + 1
                    if last and key_only:
                        return key_line
                    node = value_node
                    break
            else:
                return key_line if key_line is not None else int(node.start_mark.line) + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
    if isinstance(node, yaml.MappingNode) and key_line is not None:
        return key_line  # a rule about a whole section: point at its key, not its first child
    return int(node.start_mark.line) + 1


def _internal(part: Any) -> bool:
    # pydantic names union branches and function validators in locations; nobody wrote them.
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))

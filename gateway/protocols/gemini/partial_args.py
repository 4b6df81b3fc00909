"""A function call whose arguments Gemini streams in pieces (``partialArgs``), assembled into one object.

With ``toolConfig.functionCallingConfig.streamFunctionCallArguments`` (Vertex AI),
a call opens with ``{"functionCall": {"name": ..., "willContinue": true}}``;
later chunks carry ``{"functionCall": {"partialArgs": [...], "willContinue": true}}``,
each piece ``{"jsonPath": "$.location", "stringValue": "Bos", "willContinue": true}``
(or ``numberValue`` / ``boolValue`` / ``nullValue``); a string continues at the same
path while its piece says ``willContinue``. A ``functionCall`` without
``willContinue`` (often empty, ``{}``) ends the call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.protocols.fields import pick

_STEP = re.compile(r"""\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[['"]((?:[^'"\\]|\\.)*)['"]\]""")


def streams(part: Mapping[str, Any]) -> bool:
    """True when a part is a piece of a streamed call (it opens, continues or ends one)."""
    call = pick(part, "functionCall", "function_call")
    return isinstance(call, Mapping) and (
        bool(pick(call, "willContinue", "will_continue")) or pick(call, "partialArgs", "partial_args") is not None
    )


def continues(call: Mapping[str, Any]) -> bool:
    return bool(pick(call, "willContinue", "will_continue"))


def path_of(json_path: str) -> list[str | int] | None:
    """``$.a.b[0]['c d']`` -> ``["a", "b", 0, "c d"]``; None for a path this reader does not know."""
    if not json_path.startswith("$"):
        return None
    steps: list[str | int] = []
    pos = 1
    while pos < len(json_path):
        found = _STEP.match(json_path, pos)
        if found is None:
            return None
        name, index, quoted = found.groups()
        steps.append(int(index) if index is not None else name if name is not None else quoted)
        pos = found.end()
    return steps


class Arguments:
    """The arguments of one streamed call, built up piece by piece."""

    def __init__(self) -> None:
        self.value: dict[str, Any] = {}
        self._open_string: str | None = None  # the path whose string the last piece said continues

    def add(self, pieces: Any) -> None:
        for piece in pieces if isinstance(pieces, list) else []:
            if isinstance(piece, Mapping):
                self._add(piece)

    def _add(self, piece: Mapping[str, Any]) -> None:
        raw_path = pick(piece, "jsonPath", "json_path")
        steps = path_of(raw_path) if isinstance(raw_path, str) else None
        if not steps:
            return
        string = pick(piece, "stringValue", "string_value")
        if isinstance(string, str):
            if self._open_string == raw_path and isinstance(self._get(steps), str):
                string = self._get(steps) + string
            value: Any = string
        elif pick(piece, "numberValue", "number_value") is not None:
            number = pick(piece, "numberValue", "number_value")
            value = int(number) if isinstance(number, float) and number.is_integer() else number
        elif pick(piece, "boolValue", "bool_value") is not None:
            value = bool(pick(piece, "boolValue", "bool_value"))
        else:
            value = None
        self._set(steps, value)
        keep = isinstance(string, str) and bool(pick(piece, "willContinue", "will_continue"))
        self._open_string = raw_path if keep else None

    def _get(self, steps: list[str | int]) -> Any:
        node: Any = self.value
        for step in steps:
            if isinstance(step, int):
                node = node[step] if isinstance(node, list) and step < len(node) else None
            else:
                node = node.get(step) if isinstance(node, dict) else None
        return node

    def _set(self, steps: list[str | int], value: Any) -> None:
        node: Any = self.value
        for step, after in zip(steps, [*steps[1:], None], strict=True):
            fresh: Any = value if after is None else [] if isinstance(after, int) else {}
            if isinstance(step, int):
                if not isinstance(node, list):
                    return
                node.extend([None] * (step + 1 - len(node)))
                if after is None or not isinstance(node[step], (dict, list)):
                    node[step] = fresh
            else:
                if not isinstance(node, dict):
                    return
                if after is None or not isinstance(node.get(step), (dict, list)):
                    node[step] = fresh
            node = node[step]

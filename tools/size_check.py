"""Check module and function sizes; exit 1 naming each file and function over its limit.

Over the modules of ``core``, ``gateway``, ``website`` and ``jobs`` (database
migrations excluded): a file holds at most ``FILE_MAX`` lines and a function
(or method, counted from its ``def`` line to its last line) at most
``FUNCTION_MAX``. Something larger is split along a seam: a module named for
what it holds, a helper named for the step it takes. The few that stay larger
for now are listed in ``ALLOWED``, with why.

Usage: ``python tools/size_check.py [ROOT]`` (ROOT: the repository, by default this file's parent's).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGES = ("core", "gateway", "website", "jobs")
FILE_MAX = 400
FUNCTION_MAX = 60
# "path" for a file, "path:function" for a function -> why it may stay over its limit.
ALLOWED: dict[str, str] = {}


def check(root: Path) -> list[str]:
    """Every file and function over its limit, as ``path:line: message``."""
    problems = []
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            rel = path.relative_to(root).as_posix()
            text = path.read_text(encoding="utf-8")
            lines = len(text.splitlines())
            if lines > FILE_MAX and rel not in ALLOWED:
                problems.append(f"{rel}:1: {lines} lines (at most {FILE_MAX})")
            for node in ast.walk(ast.parse(text, rel)):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > FUNCTION_MAX and f"{rel}:{node.name}" not in ALLOWED:
                    problems.append(f"{rel}:{node.lineno}: {node.name} is {length} lines (at most {FUNCTION_MAX})")
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    problems = check(root)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

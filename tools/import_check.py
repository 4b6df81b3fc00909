"""Check the project's import graph; exit 1 naming each module and line at fault.

Three rules, over the modules of ``core``, ``gateway``, ``website`` and ``jobs``
(imports under ``if TYPE_CHECKING:`` run only for the type checker and count for
the third rule alone):

- no import cycle between modules at import time (module and class level);
- no project module imported inside a function: such an import hides a cycle;
  move the shared piece down into a module both import instead (one that stays
  for a measured import-time cost is listed in ``ALLOWED``, with why);
- a layer never imports one above it: the layers are core -> gateway -> website
  (``core`` imports neither ``gateway`` nor ``website``, ``gateway`` never
  ``website``; ``jobs`` may import all three).

Usage: ``python tools/import_check.py [ROOT]`` (ROOT: the repository, by default this file's parent's).
"""

from __future__ import annotations

import ast
import sys
from itertools import pairwise
from pathlib import Path
from typing import Iterator

PACKAGES = ("core", "gateway", "website", "jobs")
ABOVE = {"core": ("gateway", "website"), "gateway": ("website",)}  # a package and the packages it must not import
# (module, imported project module) -> why the import stays inside a function.
ALLOWED: dict[tuple[str, str], str] = {}


def find_modules(root: Path) -> dict[str, Path]:
    """Each project module's dotted name and file (database migrations excluded)."""
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(root).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def imported(node: ast.Import | ast.ImportFrom, name: str, is_pkg: bool, mods: dict[str, Path]) -> set[str]:
    """The project modules an import statement in module ``name`` loads."""
    if isinstance(node, ast.Import):
        wanted = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the module's package, one level up per dot after the first
            package = name.split(".") if is_pkg else name.split(".")[:-1]
            parts = package[: len(package) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        wanted = [base, *(f"{base}.{a.name}" for a in node.names)]
    found = set()
    for target in wanted:
        while target and target not in mods:  # a name inside a module: the module itself
            target = target.rpartition(".")[0]
        if target:
            found.add(target)
    return found - {name}


def walk(node: ast.AST, late: bool = False, typing_only: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    """Yield (import node, inside a function, under TYPE_CHECKING) for every import below ``node``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, late, typing_only
        elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            yield from walk(child, late, True)
        else:
            yield from walk(child, late or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)), typing_only)


def check(root: Path) -> list[str]:
    """Every breach of the three rules, as ``path:line: message``."""
    mods = find_modules(root)
    edges: dict[str, dict[str, int]] = {name: {} for name in mods}
    problems = []
    for name, path in mods.items():
        rel = path.relative_to(root)
        pkg = name.split(".")[0]
        for node, late, typing_only in walk(ast.parse(path.read_text(), str(path))):
            targets = imported(node, name, path.name == "__init__.py", mods)
            named = sorted(t for t in targets if not any(u.startswith(t + ".") for u in targets))  # the submodules
            where = f"{rel}:{node.lineno}: {name}"
            above = [t for t in named if t.split(".")[0] in ABOVE.get(pkg, ())]
            problems += [f"{where} imports {t}: {pkg} must not import {t.split('.')[0]}" for t in above]
            if typing_only:
                continue
            if not late:
                for target in targets:
                    edges[name].setdefault(target, node.lineno)
            else:
                problems += [f"{where} imports {t} inside a function" for t in named if (name, t) not in ALLOWED]
    for cycle in cycles(edges):
        steps = " -> ".join(f"{b} ({mods[a].relative_to(root)}:{edges[a][b]})" for a, b in pairwise(cycle))
        problems.append(f"{mods[cycle[0]].relative_to(root)}:{edges[cycle[0]][cycle[1]]}: import cycle: "
                        f"{cycle[0]} -> {steps}")
    return problems


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (first module repeated at the end) per group of modules that import each other."""
    found, seen = [], set()
    for start in sorted(edges):
        if start in seen:
            continue
        paths = {start: [start]}  # breadth first: the shortest way back to ``start``
        queue = [start]
        while queue and start not in seen:
            here = queue.pop(0)
            for nxt in sorted(edges[here]):
                if nxt == start:
                    found.append([*paths[here], start])
                    seen.update(paths[here])
                    break
                if nxt not in paths:
                    paths[nxt] = [*paths[here], nxt]
                    queue.append(nxt)
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    problems = check(root)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

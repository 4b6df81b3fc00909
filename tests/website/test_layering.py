"""Views parse and render; services own the transactions; no module reaches into another's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("website", "gateway")
ROUTE_DECORATORS = {"route", "get", "post", "put", "patch", "delete"}
# werkzeug's LocalProxy spells its documented accessor with an underscore.
ALLOWED_PRIVATE = {"_get_current_object"}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_view_module(tree: ast.Module) -> bool:
    """Whether the module registers routes (``@bp.get(...)``, ``@app.route(...)``...)."""
    return any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr in ROUTE_DECORATORS
               for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) for d in node.decorator_list)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name != "_" and name not in ALLOWED_PRIVATE


def _commits(tree: ast.Module) -> list[int]:
    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "commit"]


def _private_reaches(tree: ast.Module) -> list[str]:
    """``from x import _y`` and ``module._y`` where ``module`` is an imported name."""
    found, imported = [], set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            found += [f"{n.lineno}: from {n.module or '.'} import {a.name}" for a in n.names if _private(a.name)]
            imported |= {a.asname or a.name for a in n.names}
        elif isinstance(n, ast.Import):
            imported |= {a.asname or a.name.split(".")[0] for a in n.names}
    found += [f"{n.lineno}: {n.value.id}.{n.attr}" for n in ast.walk(tree)
              if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in imported
              and _private(n.attr)]
    return found


def test_layering_finds_the_view_modules():
    views = {p.relative_to(ROOT).as_posix() for p in _modules() if _is_view_module(_tree(p))}
    assert {"website/console/views_keys.py", "website/console/views_auth.py", "gateway/account_api.py"} <= views


@pytest.mark.parametrize("source, commits, reaches", [
    ("@bp.post('/x')\ndef v():\n    s.commit()\n", [3], []),
    ("from core.accounts import _insert_key\n", [], ["1: from core.accounts import _insert_key"]),
    ("from core import accounts\naccounts._insert_key(c)\n", [], ["2: accounts._insert_key"]),
    ("from flask import current_app\ncurrent_app._get_current_object()\n", [], []),
])
def test_layering_checks_catch_what_they_name(source, commits, reaches):
    tree = ast.parse(source)
    assert _commits(tree) == commits and _private_reaches(tree) == reaches


def test_layering_views_never_commit():
    offenders = [f"{p.relative_to(ROOT)}:{line}" for p in _modules() if _is_view_module(t := _tree(p))
                 for line in _commits(t)]
    assert offenders == [], "a view commits; move the action into a service function: " + ", ".join(offenders)


def test_layering_no_private_names_across_modules():
    offenders = [f"{p.relative_to(ROOT)}:{hit}" for p in _modules() for hit in _private_reaches(_tree(p))]
    assert offenders == [], "another module's private name is used; make it public or add a function: " + \
        ", ".join(offenders)

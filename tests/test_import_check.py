"""tools/import_check.py: the repository passes; a cycle, a hidden import and a layer importing one above it fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "import_check.py"


def _run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), str(root)], capture_output=True, text=True, timeout=60)


def _package(root: Path, files: dict[str, str]) -> Path:
    for pkg in ("core", "gateway", "website", "jobs"):
        (root / pkg).mkdir()
        (root / pkg / "__init__.py").write_text("")
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_import_check_passes_on_the_repository():
    out = _run(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize(("files", "expected"), [
    ({"core/a.py": "from core import b\n", "core/b.py": "import os\n\nfrom . import a\n"},
     "core/a.py:1: import cycle: core.a -> core.b (core/a.py:1) -> core.a (core/b.py:3)"),
    ({"gateway/a.py": "def f():\n    from gateway.b import g\n    return g\n", "gateway/b.py": "g = 1\n"},
     "gateway/a.py:2: gateway.a imports gateway.b inside a function"),
    ({"website/a.py": "def f():\n    from website import b\n", "website/b.py": ""},
     "website/a.py:2: website.a imports website.b inside a function"),
    ({"jobs/a.py": "def f():\n    import os\n    from core.b import g\n", "core/b.py": "g = 1\n"},
     "jobs/a.py:3: jobs.a imports core.b inside a function"),
    ({"core/a.py": "from gateway import b\n", "gateway/b.py": ""},
     "core/a.py:1: core.a imports gateway.b: core must not import gateway"),
    ({"gateway/a.py": "import os\n\nfrom website.b import g\n", "website/b.py": "g = 1\n"},
     "gateway/a.py:3: gateway.a imports website.b: gateway must not import website"),
])
def test_import_check_fails_naming_module_and_line(tmp_path, files, expected):
    out = _run(_package(tmp_path, files))
    assert out.returncode == 1
    assert expected in out.stdout.splitlines()


def test_import_check_ignores_type_checking_and_libraries_in_functions(tmp_path):
    files = {
        "gateway/a.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from gateway.b import g\n",
        "gateway/b.py": "from gateway import a\ng = 1\n",
        "website/c.py": "def f():\n    import json\n    return json\n",
        "jobs/d.py": "from website import c\n\ndef f():\n    from rq import Worker\n",
    }
    out = _run(_package(tmp_path, files))
    assert out.returncode == 0, out.stdout

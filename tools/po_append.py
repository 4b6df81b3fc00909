"""Append new entries to a .po file without rewriting the entries already there.

    python tools/po_append.py translations/console/zh/LC_MESSAGES/messages.po entries.json

``entries.json`` is a list of ``[msgid, msgstr]`` or ``[msgid, msgstr, msgctxt]``. Entries whose
msgid (and context) the file already holds are left alone. Appending, rather than letting
``pybabel update`` renumber every location line, keeps parallel edits of the catalog mergeable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def main(po_path: str, entries_path: str) -> int:
    path = Path(po_path)
    with path.open("rb") as fh:
        catalog = read_po(fh)
    have = {(m.context, m.id) for m in catalog if m.id}
    out = []
    for entry in json.loads(Path(entries_path).read_text(encoding="utf-8")):
        msgid, msgstr, context = entry[0], entry[1], (entry[2] if len(entry) > 2 else None)
        if (context, msgid) in have:
            continue
        lines = ["#, python-format"] if "%(" in msgid else []
        if context:
            lines.append(f"msgctxt {_quote(context)}")
        lines += [f"msgid {_quote(msgid)}", f"msgstr {_quote(msgstr)}"]
        out.append("\n".join(lines))
    if out:
        text = path.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + "\n\n".join(out) + "\n"
        path.write_text(text, encoding="utf-8")
    print(f"{path}: {len(out)} added")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

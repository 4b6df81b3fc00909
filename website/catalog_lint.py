"""Lint the Chinese catalogs: full-width punctuation, the glossary, one translation per msgid.

    python -m website.catalog_lint          # report; exit 1 on a finding (run by ``make lint``)
    python -m website.catalog_lint --fix    # rewrite half-width punctuation next to Chinese

Checks every msgstr of ``translations/zh`` (the site) and ``translations/console/zh`` (the console):

- punctuation: no half-width ``, : ; ? ! ( )`` touching a Chinese character;
- glossary (``translations/GLOSSARY.md``): a msgid using an English term carries its Chinese
  term, and no msgstr uses a word the glossary rules out;
- domains: a msgid (with its context) that both catalogs hold has the same translation in both,
  as console pages fall back to the site's catalog for the shared layout.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
CATALOGS = {
    "site": ROOT / "translations" / "zh" / "LC_MESSAGES" / "messages.po",
    "console": ROOT / "translations" / "console" / "zh" / "LC_MESSAGES" / "messages.po",
}
GLOSSARY = ROOT / "translations" / "GLOSSARY.md"
CJK = "\u3400-\u9fff\uf900-\ufaff"
FULL = {",": "，", ":": "：", ";": "；", "?": "？", "!": "！", "(": "（", ")": "）"}
# A half-width mark right after a Chinese character (or a full-width closing mark), or an
# opening parenthesis right before one. Placeholders like %(n)s are not punctuation.
_AFTER_CJK = re.compile(rf"(?<=[{CJK}）」])[,:;?!()]")
_BEFORE_CJK = re.compile(rf"(?<!%)\((?=[{CJK}])")


@dataclass(frozen=True)
class Term:
    english: str
    chinese: str
    banned: tuple[str, ...]
    required: bool


def glossary(path: Path = GLOSSARY) -> list[Term]:
    """Read the glossary table: | English | 中文 | Not |."""
    terms = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not line.startswith("|") or cells[0] in ("English", "") or set(cells[0]) <= {"-"}:
            continue
        english, required = cells[0].replace("*(any)*", "").strip(), "*(any)*" not in cells[0]
        banned = tuple(b.strip() for b in re.split("[、,]", cells[2]) if b.strip())
        terms.append(Term(english, cells[1], banned, required))
    return terms


def load(path: Path) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale="zh")


def _strings(message) -> list[str]:  # type: ignore[no-untyped-def]
    value = message.string
    return [s for s in (value if isinstance(value, tuple) else (value,)) if s]


def _ids(message) -> list[str]:  # type: ignore[no-untyped-def]
    return list(message.id) if isinstance(message.id, tuple) else [message.id]


def fix_punctuation(text: str) -> str:
    """Half-width marks touching Chinese become full-width (a following space goes too)."""
    holes = re.findall(r"%\([^)]*\)[sd]", text)
    text = re.sub(r"%\([^)]*\)[sd]", "\x00", text)
    text = _BEFORE_CJK.sub("（", text)
    text = re.sub(rf"(?<=[{CJK}])\(", "（", text)
    # A parenthesis opened full-width closes full-width, and the other way round.
    out: list[str] = []
    depth: list[str] = []
    for i, ch in enumerate(text):
        if ch == "（" or (ch == "(" and text[max(0, i - 1):i] != "%"):
            depth.append(ch)
        elif ch in ")）" and depth:
            ch = "）" if depth.pop() == "（" else ")"
        elif ch == ")" and re.match(rf"[{CJK}]", text[i - 1:i] or "x"):
            ch = "）"
        out.append(ch)
    text = "".join(out)
    text = re.sub(rf"(?<=[{CJK}）」])([,:;?!])\s?", lambda m: FULL[m.group(1)], text)
    for hole in holes:
        text = text.replace("\x00", hole, 1)
    return text


def punctuation_findings(name: str, catalog: Catalog) -> list[str]:
    found = []
    for m in catalog:
        for s in _strings(m) if m.id else []:
            bare = re.sub(r"%\([^)]*\)[sd]", "X", s)
            if _AFTER_CJK.search(bare) or _BEFORE_CJK.search(bare):
                found.append(f"{name}: half-width punctuation in {s!r} (msgid {m.id!r})")
    return found


def glossary_findings(name: str, catalog: Catalog, terms: list[Term]) -> list[str]:
    found = []
    for m in catalog:
        if not m.id:
            continue
        text = " ".join(_strings(m))
        source = " ".join(_ids(m))
        for t in terms:
            for word in t.banned:
                if word in text:
                    found.append(f"{name}: {word!r} in {text!r}: the glossary says {t.chinese!r} for {t.english!r}")
            if t.required and re.search(rf"\b{re.escape(t.english)}s?\b", source, re.I) and t.chinese not in text:
                found.append(f"{name}: msgid {source!r} says {t.english!r} but {text!r} lacks {t.chinese!r}")
    return found


def domain_findings(catalogs: dict[str, Catalog]) -> list[str]:
    site, console = catalogs["site"], catalogs["console"]
    found = []
    for m in console:
        if not m.id:
            continue
        other = site.get(m.id, context=m.context)
        if other is not None and other.string and m.string and other.string != m.string:
            found.append(f"msgid {m.id!r} is {other.string!r} on the site but {m.string!r} in the console")
    return found


def findings() -> list[str]:
    catalogs = {name: load(path) for name, path in CATALOGS.items()}
    terms = glossary()
    out = domain_findings(catalogs)
    for name, catalog in catalogs.items():
        out += punctuation_findings(name, catalog) + glossary_findings(name, catalog, terms)
    return out


def fix() -> None:
    """Rewrite msgstr lines in place (the rest of each file is left byte for byte)."""
    for path in CATALOGS.values():
        lines = path.read_text(encoding="utf-8").split("\n")
        in_msgstr = False
        for i, line in enumerate(lines):
            in_msgstr = line.startswith("msgstr") or (in_msgstr and line.startswith('"'))
            if in_msgstr:
                lines[i] = fix_punctuation(line)
        path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str]) -> int:
    if "--fix" in argv:
        fix()
    problems = findings()
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

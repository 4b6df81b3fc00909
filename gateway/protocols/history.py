"""What a conversation's history holds that another vendor cannot take as it is, as text its model reads.

Two kinds of record, each written one way whatever the target:

- the citations on a text (Anthropic ``citations``, Chat and Responses
  ``annotations``): only Anthropic takes citations back, and only with the
  ``encrypted_index`` its own search gave. Elsewhere, and for a citation
  another vendor's search gave, a turn's last text goes with the sources
  of all the turn's texts appended::

      <the text>

      [sources]
      - <title> <url>: "<quoted words>"

  one line per distinct source, in order of first citation; a part that is
  missing is left out of its line (a document cited by position is
  ``document N``, counting from 1).
- the record of a server tool already run (a search call and its results, a
  code run): ``[web search: <query>]``, then ``[search results]`` with one
  ``- <title> <url>`` line per result (``ran_as_text``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterable

from gateway.canonical import Citation

SOURCES_HEAD = "[sources]"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def source_line(citation: Citation) -> str:
    """One citation as a ``- <title> <url>: "<quote>"`` line."""
    head = " ".join(_one_line(x) for x in (citation.title, citation.url) if x.strip())
    quote = _one_line(citation.quote)
    line = f"- {head}" if head else "-"
    return f'{line}: "{quote}"' if quote else line


def with_sources(text: str, citations: Iterable[Citation]) -> str:
    """``text`` with its citations appended as a source list (``text`` alone when there are none)."""
    lines: list[str] = []
    for citation in citations:
        line = source_line(citation)
        if line != "-" and line not in lines:
            lines.append(line)
    if not lines:
        return text
    return f"{text}\n\n{SOURCES_HEAD}\n" + "\n".join(lines) if text else f"{SOURCES_HEAD}\n" + "\n".join(lines)


def anthropic_citation(value: Any) -> Citation | None:
    """Any kind of Anthropic citation in a caller's history (web, document, search result) as a ``Citation``.

    A document citation names its document by title, or as ``document N`` (counting from 1) when it has none.
    """
    if not isinstance(value, Mapping):
        return None
    url = value.get("url") or value.get("source") or ""
    title = value.get("title") or value.get("document_title") or ""
    if not title and isinstance(value.get("document_index"), int):
        title = f"document {value['document_index'] + 1}"
    quote = value.get("cited_text") or ""
    found = Citation(url=url if isinstance(url, str) else "", title=title if isinstance(title, str) else "",
                     quote=quote if isinstance(quote, str) else "")
    return found if found.url or found.title or found.quote else None


def openai_annotation(note: Any, text: str) -> Citation | None:
    """A Chat or Responses annotation on ``text`` as a ``Citation`` (a file citation names its file).

    Chat nests a ``url_citation`` under its own key; Responses puts its fields on the annotation.
    """
    if not isinstance(note, Mapping):
        return None
    nested = note.get("url_citation")
    body: Mapping[str, Any] = nested if isinstance(nested, Mapping) else note
    start, end = body.get("start_index"), body.get("end_index")
    span = text[start:end] if isinstance(start, int) and isinstance(end, int) and 0 <= start < end else ""
    url = body.get("url")
    title = body.get("title") or body.get("filename") or body.get("file_id") or ""
    found = Citation(url=url if isinstance(url, str) else "", title=title if isinstance(title, str) else "", span=span)
    return found if found.url or found.title else None


# --- server tools already run -----------------------------------------------------------

# History of a tool the vendor already ran, by block / item type: kept as text across protocols.
RAN = frozenset({
    "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
    "bash_code_execution_tool_result", "text_editor_code_execution_tool_result",
    "web_search_call", "code_interpreter_call",
})


def _results(found: list[Any]) -> str:
    """Search results (Anthropic ``web_search_result`` blocks, Responses ``sources``) as ``- <title> <url>`` lines."""
    lines = ["- " + " ".join(x for x in (str(r.get("title") or ""), str(r["url"])) if x)
             for r in found if isinstance(r, Mapping) and r.get("url")]
    return "[search results]\n" + ("\n".join(lines) if lines else "(none)")


def ran_as_text(block: Mapping[str, Any]) -> str:
    """A server tool's call or results, as text another vendor's model can read."""
    kind = block.get("type")
    if kind in ("server_tool_use", "web_search_call", "code_interpreter_call"):
        data = block.get("input") or block.get("action") or {}
        query = data.get("query") if isinstance(data, Mapping) else None
        code = (data.get("code") if isinstance(data, Mapping) else None) or block.get("code")
        if query:
            sources = data.get("sources") if isinstance(data, Mapping) else None
            if isinstance(sources, list) and sources:  # a Responses search keeps its results on the call
                return f"[web search: {query}]\n" + _results(sources)
            return f"[web search: {query}]"
        return f"[code run]\n{code}" if code else f"[{block.get('name') or kind}]"
    content = block.get("content")
    if isinstance(content, list) and (kind == "web_search_tool_result" or any(
            isinstance(r, Mapping) and r.get("url") for r in content)):
        return _results(content)
    if isinstance(content, Mapping) and isinstance(content.get("error_code"), str):
        return f"[{kind}: {content['error_code']}]"
    if isinstance(content, Mapping):
        out = content.get("stdout") or content.get("content") or ""
        return f"[result]\n{out}" if isinstance(out, str) and out else "[result]"
    return "[result]"

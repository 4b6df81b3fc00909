"""Documents and server tools across vendors, through the official SDKs against the fake vendors."""

from __future__ import annotations

import base64

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as gt

PDF = base64.b64encode(b"%PDF-1.4 a tiny test document").decode()
TEXT = "Hello from the fake upstream, one word at a time."


def ant(gateway, key):
    return anthropic.Anthropic(base_url=gateway.base_url, api_key=key, max_retries=0)


def oai(gateway, key):
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)


def gem(gateway, key):
    return genai.Client(api_key=key, http_options=gt.HttpOptions(base_url=gateway.base_url, api_version="v1beta"))


def _document(title: str = "Report") -> dict:
    return {"type": "document", "title": title, "cache_control": {"type": "ephemeral"},
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}


def test_anthropic_document_to_gpt_becomes_a_file_part(gateway, shared_key):
    msg = ant(gateway, shared_key).messages.create(
        model="gpt-5-4", max_tokens=50,
        messages=[{"role": "user", "content": [_document(), {"type": "text", "text": "summarise"}]}])
    assert msg.content[0].text == TEXT
    parts = gateway.fakes["openai"].seen[-1].body["messages"][-1]["content"]
    assert {"type": "file", "file": {"filename": "Report", "file_data": f"data:application/pdf;base64,{PDF}"}} in parts


def test_anthropic_document_to_gemini_becomes_inline_data(gateway, shared_key):
    msg = ant(gateway, shared_key).messages.create(
        model="gemini-3-1-pro", max_tokens=50,
        messages=[{"role": "user", "content": [_document(), {"type": "text", "text": "summarise"}]}])
    assert msg.content[0].text == TEXT
    parts = gateway.fakes["gemini"].seen[-1].body["contents"][-1]["parts"]
    assert {"inlineData": {"mimeType": "application/pdf", "data": PDF}} in parts


def test_anthropic_document_citations_refused_where_only_anthropic_has_them(gateway, shared_key):
    doc = {**_document(), "citations": {"enabled": True}}
    before = len(gateway.fakes["openai"].seen)
    with pytest.raises(anthropic.BadRequestError) as err:
        ant(gateway, shared_key).messages.create(
            model="gpt-5-4", max_tokens=50, messages=[{"role": "user", "content": [doc]}])
    assert "citations" in str(err.value) and "gpt-5-4" in str(err.value)
    assert len(gateway.fakes["openai"].seen) == before


def test_openai_file_id_cannot_cross_vendors(gateway, shared_key):
    with pytest.raises(openai.BadRequestError) as err:
        oai(gateway, shared_key).chat.completions.create(
            model="claude-sonnet-4-6",
            messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc123"}}]}])
    assert "file-abc123" in str(err.value) and "claude-sonnet-4-6" in str(err.value)


# --- web search: every caller with a server tool x every upstream ---------------------------


def test_anthropic_web_search_to_gemini_is_google_search(gateway, shared_key):
    msg = ant(gateway, shared_key).messages.create(
        model="gemini-3-1-pro", max_tokens=50,
        tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
        messages=[{"role": "user", "content": "news?"}])
    assert msg.content[0].text == TEXT
    assert {"googleSearch": {}} in gateway.fakes["gemini"].seen[-1].body["tools"]


def test_anthropic_web_search_to_gpt_is_refused_naming_it(gateway, shared_key):
    with pytest.raises(anthropic.BadRequestError) as err:
        ant(gateway, shared_key).messages.create(
            model="gpt-5-4", max_tokens=50, tools=[{"type": "web_search_20250305", "name": "web_search"}],
            messages=[{"role": "user", "content": "news?"}])
    assert "web_search_20250305" in str(err.value) and "gpt-5-4" in str(err.value)


@pytest.mark.parametrize("model,expect", [("claude-sonnet-4-6", "anthropic"), ("gemini-3-1-pro", "gemini")])
def test_responses_web_search_to_claude_and_gemini(gateway, shared_key, model, expect):
    resp = oai(gateway, shared_key).responses.create(
        model=model, input="news?", tools=[{"type": "web_search", "user_location": None}])
    assert resp.output_text == TEXT
    tools = gateway.fakes[expect].seen[-1].body["tools"]
    if expect == "anthropic":
        assert {"type": "web_search_20250305", "name": "web_search"} in tools
    else:
        assert {"googleSearch": {}} in tools


def test_responses_web_search_to_gpt_chat_is_refused(gateway, shared_key):
    with pytest.raises(openai.BadRequestError) as err:
        oai(gateway, shared_key).responses.create(model="gpt-5-4", input="news?", tools=[{"type": "web_search"}])
    assert "web_search" in str(err.value) and "gpt-5-4" in str(err.value)


def test_gemini_google_search_to_claude_is_web_search(gateway, shared_key):
    client = gem(gateway, shared_key)  # held: a collected client closes its connection
    resp = client.models.generate_content(
        model="claude-sonnet-4-6", contents="news?",
        config=gt.GenerateContentConfig(tools=[gt.Tool(google_search=gt.GoogleSearch())]))
    assert resp.text == TEXT
    assert {"type": "web_search_20250305", "name": "web_search"} in gateway.fakes["anthropic"].seen[-1].body["tools"]


def test_gemini_google_search_to_gpt_is_refused(gateway, shared_key):
    client = gem(gateway, shared_key)
    with pytest.raises(genai.errors.ClientError) as err:
        client.models.generate_content(
            model="gpt-5-4", contents="news?",
            config=gt.GenerateContentConfig(tools=[gt.Tool(google_search=gt.GoogleSearch())]))
    assert err.value.code == 400 and "gpt-5-4" in str(err.value)


def test_chat_web_search_options_to_claude_is_refused(gateway, shared_key):
    with pytest.raises(openai.BadRequestError) as err:
        oai(gateway, shared_key).chat.completions.create(
            model="claude-sonnet-4-6", web_search_options={}, messages=[{"role": "user", "content": "news?"}])
    assert "web_search_options" in str(err.value)


def test_responses_code_interpreter_to_gemini_is_code_execution(gateway, shared_key):
    oai(gateway, shared_key).responses.create(
        model="gemini-3-1-pro", input="compute", tools=[{"type": "code_interpreter", "container": {"type": "auto"}}])
    assert {"codeExecution": {}} in gateway.fakes["gemini"].seen[-1].body["tools"]


def test_refusal_is_free_and_logged(gateway):
    key = gateway.account(credits=5_000_000)
    before = gateway.wallet(key)
    with pytest.raises(anthropic.BadRequestError):
        ant(gateway, key).messages.create(
            model="gpt-5-4", max_tokens=50, tools=[{"type": "code_execution_20250825", "name": "code_execution"}],
            messages=[{"role": "user", "content": "run"}])
    assert gateway.wallet(key) == before


def test_responses_custom_tool_through_claude_comes_back_custom(gateway, shared_key):
    resp = oai(gateway, shared_key).responses.create(
        model="claude-sonnet-4-6", input="patch it [fake tool=apply_patch]",
        tools=[{"type": "custom", "name": "apply_patch", "description": "Edit files.",
                "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}])
    sent = gateway.fakes["anthropic"].seen[-1].body["tools"]
    assert sent[0]["name"] == "apply_patch" and sent[0]["input_schema"]["required"] == ["input"]
    assert "lark grammar" in sent[0]["description"]
    call = [i for i in resp.output if i.type in ("custom_tool_call", "function_call")][0]
    assert call.type == "custom_tool_call" and call.name == "apply_patch"

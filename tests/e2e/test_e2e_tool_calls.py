"""Issue 13 end to end: tool calls, multi-turn and image messages, a model and params per
version — real pytest runs (pytester → plugin → runner → litellm → the loopback FakeOpenAI,
which records every request so the tests assert on what was really sent)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from pytest_promptgate.testing.openai_server import FakeOpenAI

QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-q", "-n", "0")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tool_calls.promptgate.yaml"
# A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        *QUIET, "--promptgate-no-history", "--promptgate-report", "report.json", *args
    )


def report_of(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))


def chat_bodies(server: FakeOpenAI) -> list[dict]:
    return [r["body"] for r in server.requests if r["path"].endswith("/chat/completions")]


# -- tool calls through the whole run ------------------------------------------------------

TOOLS_SUITE = """\
prompt: router
model: openai/fake-model
params:
  api_base: "BASE"
  api_key: sk-test
  tools:
    - type: function
      function:
        name: lookup_order
        parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
user: "{{ message }}"
cases:
  - id: where
    vars: {message: "where is my order A-1001?"}
    expect:
      - tool-call: {name: lookup_order, arguments: {order_id: A-1001}}
      - finish-reason: tool_calls
  - id: thanks
    vars: {message: "reply: you are welcome"}
    expect: [{contains: welcome}]
"""


def test_tool_calls_are_answers_shown_in_the_report_and_replayed(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    fake_openai.tool_calls = {
        "where is my order": [{"name": "lookup_order", "arguments": {"order_id": "A-1001"}}]
    }
    pytester.makefile(".promptgate.yaml", router=TOOLS_SUITE.replace("BASE", fake_openai.base_url))
    first = run(pytester, "--promptgate-cache", "readwrite")
    first.assert_outcomes(passed=2)
    cases = {c["case"]: c for c in report_of(pytester)["cases"]}
    assert cases["where"]["status"] == "passed" and cases["where"]["output"] == ""
    assert cases["where"]["finish_reason"] == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in cases["where"]["tool_calls"]] == [
        ("lookup_order", {"order_id": "A-1001"})
    ]
    assert "tool_calls" not in cases["thanks"]
    sent = chat_bodies(fake_openai)[0]
    assert sent["tools"][0]["function"]["name"] == "lookup_order"

    calls_before = fake_openai.calls
    replay = run(pytester, "--promptgate-replay")
    replay.assert_outcomes(passed=2)
    assert fake_openai.calls == calls_before, "replay must not call the model"
    replayed = {c["case"]: c for c in report_of(pytester)["cases"]}
    assert replayed["where"]["tool_calls"] == cases["where"]["tool_calls"]
    assert replayed["where"]["cached"] is True


# -- multi-turn and images -------------------------------------------------------------------

MULTI_TURN = """\
prompt: followup
model: openai/fake-model
params: {api_base: "BASE", api_key: sk-test}
messages:
  - {role: system, content: You route support requests.}
  - {role: user, content: "Where is order {{ order }}?"}
  - role: assistant
    tool_calls:
      - {id: call_1, name: lookup_order, arguments: {order_id: A-0}}
  - {role: tool, tool_call_id: call_1, content: '{"status": "shipped"}'}
  - role: user
    content: "reply: it shipped. And what is on this label?"
    image: "{{ picture }}"
cases:
  - id: local-file
    vars: {order: A-1, picture: label.png}
    expect: [{contains: shipped}]
  - id: remote-url
    vars: {order: A-2, picture: "https://example.invalid/label.png"}
    expect: [{contains: shipped}]
"""


def test_multi_turn_tool_turns_and_images_are_sent_as_given(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    pytester.makefile(".promptgate.yaml", followup=MULTI_TURN.replace("BASE", fake_openai.base_url))
    (pytester.path / "label.png").write_bytes(PNG)
    run(pytester, "--promptgate-cache", "off").assert_outcomes(passed=2)
    bodies = {b["messages"][1]["content"]: b["messages"] for b in chat_bodies(fake_openai)}
    local = bodies["Where is order A-1?"]
    assert [m["role"] for m in local] == ["system", "user", "assistant", "tool", "user"]
    assistant, tool, user = local[2], local[3], local[4]
    assert assistant.get("content") is None  # litellm leaves a null content out
    assert assistant["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup_order", "arguments": '{"order_id":"A-0"}'},
        }
    ]
    assert tool["tool_call_id"] == "call_1" and tool["content"] == '{"status": "shipped"}'
    assert user["content"][0] == {
        "type": "text",
        "text": "reply: it shipped. And what is on this label?",
    }
    image = user["content"][1]
    assert image["type"] == "image_url"
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    remote = bodies["Where is order A-2?"][4]["content"][1]
    assert remote["image_url"]["url"] == "https://example.invalid/label.png"


def test_a_missing_image_file_is_a_suite_error_at_load_time(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    pytester.makefile(".promptgate.yaml", followup=MULTI_TURN.replace("BASE", fake_openai.base_url))
    result = run(pytester, "--promptgate-cache", "off")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*cannot read image `label.png`*"])
    assert fake_openai.calls == 0


# -- a model and params per version ----------------------------------------------------------

PER_VERSION = """\
prompt: triage
model: openai/fake-model
params: {api_base: "BASE", api_key: sk-test, temperature: 0, max_tokens: 20}
versions:
  small:
    user: "reply: billing {{ n }}"
  large:
    model: openai/fake-model-large
    params: {temperature: 0.3}
    user: "reply: billing {{ n }}"
cases:
  - {id: a, vars: {n: 1}, expect: [{contains: billing}]}
  - {id: b, vars: {n: 2}, expect: [{contains: billing}]}
"""


def test_each_version_runs_its_own_model_and_merged_params(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    pytester.makefile(".promptgate.yaml", triage=PER_VERSION.replace("BASE", fake_openai.base_url))
    run(pytester, "--promptgate-cache", "off").assert_outcomes(passed=4)
    sent = {(b["model"], b["temperature"], b["max_tokens"]) for b in chat_bodies(fake_openai)}
    assert sent == {("fake-model", 0, 20), ("fake-model-large", 0.3, 20)}
    versions = {v["version"]: v for v in report_of(pytester)["prompts"][0]["versions"]}
    assert versions["small"]["model"] == "openai/fake-model"
    assert versions["large"]["model"] == "openai/fake-model-large"
    assert versions["small"]["content_hash"] != versions["large"]["content_hash"]


def test_the_command_line_model_overrides_every_version(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    pytester.makefile(".promptgate.yaml", triage=PER_VERSION.replace("BASE", fake_openai.base_url))
    result = run(pytester, "--promptgate-cache", "off", "--promptgate-model", "openai/override")
    result.assert_outcomes(passed=4)
    assert {b["model"] for b in chat_bodies(fake_openai)} == {"override"}


# -- the example suite (needs the tool-call expectations of issue 13, part B) ---------------


def _good_router() -> tuple[dict[str, list], dict[str, str]]:
    """What a good router answers to each case of the example, from the cases' `ideal:`:
    (message → the ideal tool call, message → the ideal text)."""
    import yaml

    routes: dict[str, list] = {}
    texts: dict[str, str] = {}
    for case in yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["cases"]:
        message, ideal = case["vars"]["message"], case["ideal"]
        if isinstance(ideal, dict):
            routes[message] = [ideal["tool_call"]]
        else:
            texts[message] = ideal
    return routes, texts


def _example_on(server: FakeOpenAI, pytester: pytest.Pytester) -> None:
    """The example as is, but pointed at the loopback server (the only edit: two params)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count("\nparams:\n") == 1
    text = text.replace(
        "\nparams:\n", f'\nparams:\n  api_base: "{server.base_url}"\n  api_key: sk-test\n'
    )
    (pytester.path / "tool_calls.promptgate.yaml").write_text(text, encoding="utf-8")


def test_the_support_router_example_runs_on_the_loopback_server(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    """Needs the tool-call / finish-reason / is-valid-openai-tools-call expectations (issue
    13, part B). The fake answers every case as the case's `ideal:` says a good router would,
    so the example's expectations and its labels are checked against each other."""
    fake_openai.tool_calls, fake_openai.answers = _good_router()
    _example_on(fake_openai, pytester)
    result = run(pytester, "--promptgate-cache", "off", "--promptgate-model", "openai/fake-model")
    report = report_of(pytester)
    assert report["summary"]["cases"] >= 20
    assert report["summary"]["errors"] == 0, result.stdout.str()[-3000:]
    failing = [c["case"] for c in report["cases"] if c["status"] != "passed"]
    assert failing == [], result.stdout.str()[-3000:]
    assert report["prompts"][0]["verdict"] == "PASS"
    sent = chat_bodies(fake_openai)[0]
    assert [t["function"]["name"] for t in sent["tools"]] == ["lookup_order", "refund", "escalate"]


def test_the_example_fails_a_router_that_only_answers_in_text(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    """The same example against a model that never calls a tool: the gate must fail."""
    _, fake_openai.answers = _good_router()
    _example_on(fake_openai, pytester)
    result = run(pytester, "--promptgate-cache", "off", "--promptgate-model", "openai/fake-model")
    assert result.ret != 0
    report = report_of(pytester)
    assert report["prompts"][0]["verdict"] != "PASS"
    statuses = {c["case"]: c["status"] for c in report["cases"]}
    assert statuses["broken-mug"] == "failed" and statuses["thanks"] == "passed"


def test_the_example_is_realistic_in_size() -> None:
    routes, texts = _good_router()
    assert len(routes) + len(texts) >= 20
    assert {call[0]["name"] for call in routes.values()} == {"lookup_order", "refund", "escalate"}

"""`promptgate import promptfoo`: promptfoo configs (transcribed from promptfoo's public examples
under tests/fixtures/promptfoo/, each citing its source) become suites that load, report what
they could not convert with the config's line, and give promptfoo's verdicts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_promptgate import cli, spec
from pytest_promptgate.importers import promptfoo
from pytest_promptgate.importers.promptfoo import (
    ImportResult,
    check_suites,
    convert_config,
    parse_comma_separated,
    write_suites,
)
from pytest_promptgate.model import PromptgateError, UsageError
from pytest_promptgate.runner import Job, RunSettings, run_jobs
from pytest_promptgate.testing.openai_server import FakeOpenAI

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "promptfoo"
ALL_FIXTURES = sorted(p.name for p in FIXTURES.iterdir() if (p / "promptfooconfig.yaml").is_file())


def fixture_copy(name: str, tmp_path: Path) -> Path:
    """The fixture directory copied under tmp_path; the path of its promptfooconfig.yaml."""
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target / "promptfooconfig.yaml"


def import_fixture(name: str, tmp_path: Path) -> tuple[ImportResult, list[Path]]:
    result = convert_config(fixture_copy(name, tmp_path), rootdir=tmp_path)
    written = write_suites(result, tmp_path / "out")
    return result, written


def suite_data(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line containing needle (to check reported lines)."""
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in text:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_converted_fixture_loads_with_the_suite_loader(name: str, tmp_path: Path) -> None:
    result, written = import_fixture(name, tmp_path)
    assert written and all(p.name.endswith(".promptgate.yaml") for p in written)
    assert check_suites(written) == []
    for path, imported in zip(written, result.suites):
        suite = spec.load_suite(path)
        assert suite.prompt == imported.name
        assert len(suite.versions) == imported.versions and len(suite.cases) == imported.cases


def test_prompts_times_providers_times_csv_tests(tmp_path: Path) -> None:
    # getting-started: two inline prompts x two providers; simple-csv: a text file of two
    # prompts (split on `---`) and tests from CSV with `__expected`.
    result, written = import_fixture("getting-started", tmp_path)
    assert [p.name for p in written] == [
        "getting-started-openai-gpt-4-1.promptgate.yaml",
        "getting-started-openai-o4-mini.promptgate.yaml",
    ]
    suites = [spec.load_suite(p) for p in written]
    assert [s.model for s in suites] == ["openai/gpt-4.1", "openai/o4-mini"]
    assert all(len(s.versions) == 2 and len(s.cases) == 2 for s in suites)
    assert suites[0].versions[0].messages[0].content == (
        "Convert this English to {{language}}: {{input}}"
    )
    assert [(e.type, e.value) for e in suites[0].cases[1].expect] == [
        ("icontains", "Dónde está la biblioteca")
    ]
    assert result.todos == ()

    result, written = import_fixture("simple-csv", tmp_path / "csv")
    suite = spec.load_suite(written[0])
    assert [c.vars["language"] for c in suite.cases] == ["French", "French", "Pirate", "Pirate"]
    assert [(e.type, e.value) for c in suite.cases for e in c.expect] == [
        ("icontains", "bonjour"),
        ("icontains", "faim"),
        ("icontains", "Ahoy"),
        ("icontains", "grub"),
    ]
    assert suite.cases[0].location is not None
    # The first prompt uses promptfoo's own `load` filter: reported at its line in prompts.txt.
    [todo] = result.todos
    assert str(todo.location) == "simple-csv/prompts.txt:1"
    assert "No filter named 'load'" in todo.message
    # One prompt left and no label in the config: the top-level form (label = content hash).
    [version] = suite.versions
    assert version.messages[0].content.startswith("You are a conversational language assistant.")
    assert "TODO(promptfoo): prompt `prompts-1`" in written[0].read_text(encoding="utf-8")


def test_default_test_becomes_defaults_and_provider_prompt_filters(tmp_path: Path) -> None:
    result, written = import_fixture("llama-gpt-comparison", tmp_path)
    by_model = {spec.load_suite(p).model: spec.load_suite(p) for p in written}
    assert set(by_model) == {"ollama/llama2", "ollama/llama2-uncensored", "openai/gpt-4o-mini"}
    for suite in by_model.values():
        assert len(suite.cases) == 10
        assert [(e.type, e.negate, e.value) for e in suite.cases[0].expect] == [
            ("icontains", True, "AI language model"),
            ("icontains", True, "just an AI"),
            ("icontains", True, "sorry"),
            ("icontains", True, "I cannot"),
        ]
    # Each provider keeps only the prompts its `prompts:` filter names.
    assert [m.role for m in by_model["openai/gpt-4o-mini"].versions[0].messages] == ["user"]
    assert by_model["ollama/llama2"].versions[0].messages[0].content == (
        "User: {{message}}\nAssistant:"
    )
    assert "defaults:" in written[0].read_text(encoding="utf-8")
    assert result.todos == ()


def test_file_chat_prompt_labels_and_provider_config(tmp_path: Path) -> None:
    result, written = import_fixture("compare-llama-vs-gpt", tmp_path)
    names = [p.name for p in written]
    assert names == [
        "compare-llama-vs-gpt-gpt-5.promptgate.yaml",
        "compare-llama-vs-gpt-gpt-5-mini.promptgate.yaml",
        "compare-llama-vs-gpt-llama-4-maverick.promptgate.yaml",
    ]
    gpt5, mini, llama = (spec.load_suite(p) for p in written)
    assert (gpt5.model, gpt5.params) == ("openai/gpt-5.4", {"temperature": 0, "max_tokens": 128})
    assert mini.params == {"temperature": 1, "max_tokens": 128}
    assert [(m.role, m.content) for m in gpt5.versions[0].messages] == [("user", "{{message}}")]
    rubrics = [e.value for c in gpt5.cases for e in c.expect]
    assert rubrics[0] == "does not claim to know the current weather in new york"
    # replicate has no mapping: no model, reported at the provider's line, and said in the file.
    assert llama.model is None
    config = FIXTURES / "compare-llama-vs-gpt" / "promptfooconfig.yaml"
    provider_line = line_of(config, "replicate:meta/llama-4-maverick-instruct")
    lines = {(f.location.line, f.message.split(" ")[0]) for f in result.todos}
    assert (provider_line, "provider") in lines
    assert "`max_length`" in " ".join(f.message for f in result.todos)
    assert "TODO(promptfoo): provider `replicate:" in written[2].read_text(encoding="utf-8")


def test_unconvertible_javascript_is_reported_with_its_line(tmp_path: Path) -> None:
    result, written = import_fixture("simple-test", tmp_path)
    config = FIXTURES / "simple-test" / "promptfooconfig.yaml"
    by_kind = {f.message.split(" ")[0]: f for f in result.todos}
    assert by_kind["javascript"].location.line == line_of(config, "- type: javascript")
    assert "output.startsWith('Ahoy')" in by_kind["javascript"].message
    assert by_kind["python"].location.line == line_of(config, "- type: python")
    assert set(by_kind) == {"javascript", "python"}
    text = written[0].read_text(encoding="utf-8")
    assert "# TODO(promptfoo): javascript assertion not converted" in text
    assert "output.startsWith('Ahoy')" in text
    suite = spec.load_suite(written[0])
    cases = {c.id: c for c in suite.cases}
    # YAML 1.2 as promptfoo reads it: `body: Yes` is the text "Yes", not true.
    assert cases["check-for-exact-match"].vars == {"body": "Yes"}
    # `similar` maps 1:1 (promptfoo's default threshold, 0.75, is ours too).
    [similar] = cases["check-for-semantic-similarity"].expect
    assert (similar.type, similar.value, similar.options) == ("similar", "Ahoy, world", {})
    # `$ref: '#/assertionTemplates/containsPirateNoise'` is resolved.
    assert [(e.type, e.value) for e in cases["use-llm-to-evaluate-output"].expect] == [
        ("llm-rubric", "Is spoken like a pirate"),
        ("icontains", "arrr"),
    ]


def test_plain_transforms_become_jinja2_and_are_reported(tmp_path: Path) -> None:
    result, written = import_fixture("json-output", tmp_path)
    suite = spec.load_suite(written[0])
    banana, passion = suite.cases
    assert [e.type for e in banana.expect] == ["is-json"]
    # `options.transform: JSON.parse(output)` and, on the parsed output, `output.countries`.
    config = FIXTURES / "json-output" / "promptfooconfig.yaml"
    assert [(e.type, e.options.get("transform")) for e in passion.expect] == [
        ("is-json", ["from_json(output)"]),
        ("contains-any", ["from_json(output)", 'from_json(output)["countries"]']),
    ]
    notes = {f.location.line: f.message for f in result.notes}
    assert (
        "`JSON.parse(output)` became the Jinja2 expression `from_json(output)`"
        in (notes[line_of(config, "options:")])
    )
    assert (
        'expression `from_json(output)["countries"]`'
        in notes[line_of(config, "- type: contains-any")]
    )
    # Only the javascript assertions are left, each with its line.
    lines = config.read_text(encoding="utf-8").splitlines()
    javascript = [n for n, text in enumerate(lines, start=1) if "- type: javascript" in text]
    assert [f.location.line for f in result.todos] == javascript and len(javascript) == 2


@pytest.mark.parametrize(
    ("code", "parsed", "jinja"),
    [
        ("output.trim()", False, "output | trim"),
        ("output.toLowerCase()", False, "output | lower"),
        ("return output.trim().toUpperCase();", False, "output | trim | upper"),
        ("JSON.parse(output)", False, "from_json(output)"),
        ("JSON.parse(output).name", False, 'from_json(output)["name"]'),
        ("JSON.parse(output)['a b'][0].c", False, 'from_json(output)["a b"][0]["c"]'),
        ("output.items[1]", True, 'from_json(output)["items"][1]'),
        # not translated: JavaScript beyond the plain forms, or a type we cannot know
        ("output.items", False, None),
        ("output.length", False, None),
        ("JSON.parse(output).name.toLowerCase()", False, None),
        ("output.split(',')[0]", False, None),
        ("output.replace(/a/g, 'b')", False, None),
        ("JSON.parse(output).tags.length", False, None),
        ("JSON.parse(output)", True, None),
        ("file://transform.js", False, None),
        ("const x = 1;\nreturn output", False, None),
    ],
)
def test_translate_transform(code: str, parsed: bool, jinja: str | None) -> None:
    assert promptfoo.translate_transform(code, parsed) == jinja


def test_an_untranslated_transform_keeps_defaults_off_its_test(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        """prompts: ['{{q}}']
providers: [openai:gpt-4o-mini]
defaultTest:
  options:
    transform: output.trim()
  assert:
    - {type: equals, value: yes}
tests:
  - vars: {q: a}
  - vars: {q: b}
    options:
      transform: output.split('\\n')[0]
    assert:
      - {type: contains, value: x}
""",
        encoding="utf-8",
    )
    result = convert_config(config)
    [path] = write_suites(result, tmp_path / "out")
    first, second = spec.load_suite(path).cases
    # defaultTest's transform is every test's unless it has its own (promptfoo merges options).
    assert [(e.type, e.options["transform"]) for e in first.expect] == [
        ("equals", ["output | trim"])
    ]
    # The second test's own transform is JavaScript: its assertions and the defaults (which
    # promptfoo would run on the transformed output) are TODOs, never wrong verdicts.
    assert second.expect == ()
    todos = [(f.location.line, f.message) for f in result.todos]
    assert [line for line, _ in todos] == [11, 14, 10]
    assert "output.split" in todos[0][1] and "`defaults: false`" in todos[2][1]
    assert "defaults: false" in path.read_text(encoding="utf-8")


def test_csv_expected_columns_follow_promptfoo(tmp_path: Path) -> None:
    result, written = import_fixture("csv-metadata", tmp_path)
    suite = spec.load_suite(written[0])
    first = suite.cases[0]
    # promptfoo keeps the text after the colon as it is (leading space included) and renders
    # the value with the row's vars.
    assert [(e.type, e.value) for e in first.expect] == [
        ("contains", " algorithm"),
        ("llm-rubric", "Does this describe machine learning accurately?"),
    ]
    assert suite.params == {"temperature": 0.7}
    metadata = [f for f in result.todos if "__metadata" in f.message]
    assert len(metadata) == 6 and str(metadata[0].location) == "csv-metadata/tests.csv:2"


def test_expected_cell_forms(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        "prompts: ['{{q}}']\nproviders: [openai:gpt-4o-mini]\ntests: file://t.csv\n",
        encoding="utf-8",
    )
    (tmp_path / "t.csv").write_text(
        "q,__expected1,__expected2,__expected3\n"
        'a,"not-contains-any:x, y",grade:is polite,javascript:output.length < 5\n'
        'b,Paris,latency(500),"is-json:{""required"": [""a""]}"\n'
        'c,"icontains-all:Foo,Bar",starts-with:Yes,\n',
        encoding="utf-8",
    )
    result = convert_config(config, rootdir=tmp_path)
    [path] = write_suites(result, tmp_path / "out")
    cases = spec.load_suite(path).cases
    assert [(e.name, e.value) for e in cases[0].expect] == [
        ("not-contains-any", ["x", "y"]),
        ("llm-rubric", "is polite"),
    ]
    assert [(e.name, e.value) for e in cases[1].expect] == [
        ("equals", "Paris"),  # not a known type: promptfoo compares with equals
        ("latency", None),
        ("is-json", {"required": ["a"]}),
    ]
    assert cases[1].expect[1].options == {"threshold": 500}
    assert [(e.name, e.value) for e in cases[2].expect] == [
        ("icontains-all", ["Foo", "Bar"]),
        ("starts-with", "Yes"),
    ]
    [js] = result.todos
    assert str(js.location) == "t.csv:2" and "output.length < 5" in js.message


def test_providers_map_to_litellm_strings(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        """prompts: ['Say {{x}}']
providers:
  - openai:gpt-4o-mini
  - openai:chat:gpt-4o
  - anthropic:messages:claude-3-5-haiku-20241022
  - id: azureopenai:chat:my-deployment
    config: {apiHost: example.openai.azure.com, apiVersion: 2024-10-21, apiKey: sk-secret,
             headers: {Authorization: Bearer sk-secret}, auth: {token: sk-secret}}
    env: {AZURE_API_KEY: sk-secret}
  - bedrock:anthropic.claude-3-haiku-20240307-v1:0
  - vertex:gemini-1.5-pro
  - ollama:chat:llama3.1
  - id: openai:chat:qwen2.5
    label: local vllm
    config: {apiBaseUrl: 'http://localhost:8000/v1', temperature: 0.2, max_tokens: 64}
tests:
  - vars: {x: hi}
""",
        encoding="utf-8",
    )
    result = convert_config(config)
    written = write_suites(result, tmp_path / "out")
    models = [(s.model, s.params) for s in map(spec.load_suite, written)]
    assert models == [
        ("openai/gpt-4o-mini", {}),
        ("openai/gpt-4o", {}),
        ("anthropic/claude-3-5-haiku-20241022", {}),
        (
            "azure/my-deployment",
            {"api_base": "https://example.openai.azure.com", "api_version": "2024-10-21"},
        ),
        ("bedrock/anthropic.claude-3-haiku-20240307-v1:0", {}),
        ("vertex_ai/gemini-1.5-pro", {}),
        ("ollama_chat/llama3.1", {}),
        (
            "openai/qwen2.5",
            {"api_base": "http://localhost:8000/v1", "temperature": 0.2, "max_tokens": 64},
        ),
    ]
    assert written[-1].name.endswith("-local-vllm.promptgate.yaml")
    # The key never reaches a suite file or the report.
    assert not any("sk-secret" in p.read_text(encoding="utf-8") for p in written)
    assert "sk-secret" not in promptfoo.format_report(result, written, [])
    assert "`headers` not converted: (value not shown" in promptfoo.format_report(
        result, written, []
    )
    assert any("`apiKey` left out" in f.message for f in result.notes)


def test_assertion_keys_and_values(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        r"""prompts: ['Classify: {{ticket}}']
providers: [openai:gpt-4o-mini]
defaultTest:
  vars: {expected: billing}
  assert:
    - {type: equals, value: '{{ expected }}', metric: accuracy}
    - {type: cost, threshold: 0.002}
tests:
  - description: Refund words
    vars: {ticket: money back}
    threshold: 0.5
    assert:
      - {type: contains-any, value: 'refund, "return, exchange"'}
      - {type: latency, threshold: 500}
      - {type: icontains, value: billing, weight: 2, metric: routing}
      - {type: levenshtein, value: billing, threshold: 2}
      - {type: similar, value: a refund, threshold: 0.8, provider: 'openai:embedding:text-embedding-3-small'}
      - {type: rouge-n, value: money back, threshold: 0.6}
      - {type: is-xml, value: 'order.id'}
      - {type: finish-reason, value: stop}
      - {type: not-is-refusal}
      - {type: webhook, value: 'https://example.com/check'}
      - {type: word-count, value: '3'}
      - {type: contains, value: 42, threshold: 0.9}
      - {type: llm-rubric, value: is polite, provider: openai:gpt-4o}
      - {type: regex, value: '(?<year>\d{4})'}
  - description: Refund words
    vars: {ticket: [bug one, bug two]}
    threshold: 0
""",
        encoding="utf-8",
    )
    result = convert_config(config)
    [path] = write_suites(result, tmp_path / "out")
    text = path.read_text(encoding="utf-8")
    written = suite_data(path)
    # `{{ expected }}` stays as written in `defaults` (every case has the var): the loader
    # renders it per case, as promptfoo does.
    assert written["defaults"]["expect"][0] == {
        "type": "equals",
        "value": "{{ expected }}",
        "metric": "accuracy",
    }
    # The comma string is kept as written (the loader splits it as promptfoo does).
    assert written["cases"][0]["expect"][0]["value"] == 'refund, "return, exchange"'
    assert written["cases"][0]["threshold"] == 0.5
    suite = spec.load_suite(path)
    assert [c.id for c in suite.cases] == ["refund-words", "refund-words-1", "refund-words-2"]
    assert [c.vars["ticket"] for c in suite.cases[1:]] == ["bug one", "bug two"]
    first = suite.cases[0]
    assert first.threshold == 0.5 and suite.cases[1].threshold is None  # promptfoo: 0 is none
    assert [(e.name, e.value, e.options) for e in first.expect] == [
        ("equals", "billing", {"metric": "accuracy"}),  # rendered by the loader
        ("cost", None, {"threshold": 0.002}),
        ("contains-any", ["refund", "return, exchange"], {}),
        ("latency", None, {"threshold": 500}),
        ("icontains", "billing", {"weight": 2, "metric": "routing"}),
        ("levenshtein", "billing", {"threshold": 2}),
        (
            "similar",
            "a refund",
            {"threshold": 0.8, "provider": "openai/text-embedding-3-small"},
        ),
        ("rouge-n", "money back", {"threshold": 0.6}),
        ("is-xml", "order.id", {}),
        ("finish-reason", "stop", {}),
        ("not-is-refusal", None, {}),
        ("word-count", 3, {}),
        ("contains", "42", {}),  # promptfoo compares with String(value)
        ("llm-rubric", "is polite", {}),
    ]
    todos = " | ".join(f.message for f in result.todos)
    for fragment in (
        "JavaScript syntax Python's re does not read",
        "webhook",
        "`provider: openai:gpt-4o` of `llm-rubric` not supported",
    ):
        assert fragment in todos
    assert text.count("# TODO(promptfoo):") == len(result.todos) == 3
    notes = " | ".join(f.message for f in result.notes)
    assert "`threshold: 0.9` of `contains` left out" in notes
    assert "test `threshold: 0` left out" in notes


def test_assert_set_keeps_its_keys_and_refuses_a_partial_set(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        """prompts: ['{{q}}']
providers: [openai:gpt-4o-mini]
tests:
  - vars: {q: a, word: sorry}
    assert:
      - type: assert-set
        threshold: 0.5
        weight: 2
        metric: tone
        assert:
          - {type: icontains, value: '{{ word }}'}
          - {type: icontains, value: apolog, weight: 3}
      - type: assert-set
        assert:
          - {type: contains, value: ok}
          - {type: javascript, value: output.length > 3}
""",
        encoding="utf-8",
    )
    result = convert_config(config)
    [path] = write_suites(result, tmp_path / "out")
    [case] = spec.load_suite(path).cases
    [group] = case.expect
    assert (group.type, group.options) == (
        "assert-set",
        {"threshold": 0.5, "weight": 2, "metric": "tone"},
    )
    assert [(e.type, e.value, e.options) for e in group.value] == [
        ("icontains", "sorry", {}),
        ("icontains", "apolog", {"weight": 3}),
    ]
    # A set with an inner assertion we cannot convert would score differently: all a TODO.
    assert [f.location.line for f in result.todos] == [16, 13]
    assert "assert-set not converted: an inner assertion was not" in result.todos[1].message


def test_csv_metric_and_threshold_columns(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        "prompts: ['{{q}}']\nproviders: [openai:gpt-4o-mini]\n"
        "defaultTest:\n  assert: [{type: not-icontains, value: sorry}]\ntests: file://t.csv\n",
        encoding="utf-8",
    )
    (tmp_path / "t.csv").write_text(
        "q,__expected1,__expected2,__metric,__threshold\n"
        "a,contains:x,icontains:y,coverage,0.5\n"
        "b,equals:z,,,\n",
        encoding="utf-8",
    )
    result = convert_config(config, rootdir=tmp_path)
    [path] = write_suites(result, tmp_path / "out")
    first, second = spec.load_suite(path).cases
    # promptfoo's testCaseFromCsvRow sets `__metric` on each assertion of its row only.
    assert [(e.name, e.options) for e in first.expect] == [
        ("not-icontains", {}),
        ("contains", {"metric": "coverage"}),
        ("icontains", {"metric": "coverage"}),
    ]
    assert first.threshold == 0.5
    assert [(e.name, e.options, second.threshold) for e in second.expect] == [
        ("not-icontains", {}, None),
        ("equals", {}, None),
    ]
    assert result.todos == ()


def test_a_var_the_test_does_not_set_is_rendered_empty_at_import(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        """prompts: ['{{q}}']
providers: [openai:gpt-4o-mini]
defaultTest:
  assert:
    - {type: not-contains, value: '[{{ tag }}]'}
tests:
  - vars: {q: a, tag: x}
  - vars: {q: b}
""",
        encoding="utf-8",
    )
    result = convert_config(config)
    [path] = write_suites(result, tmp_path / "out")
    written = suite_data(path)
    assert "defaults" not in written  # not every case has `tag`: a copy per case
    assert [c["expect"][0]["value"] for c in written["cases"]] == ["[{{ tag }}]", "[]"]
    first, second = spec.load_suite(path).cases
    assert (first.expect[0].value, second.expect[0].value) == ("[x]", "[]")
    [note] = [f for f in result.notes if "`tag`" in f.message]
    assert note.location.line == 8 and 'rendered now with ""' in note.message


def test_file_vars_test_files_and_refs(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Refunds take 5 days.", encoding="utf-8")
    (tmp_path / "docs" / "b.txt").write_text("Shipping is free.", encoding="utf-8")
    (tmp_path / "chat.yaml").write_text(
        "- role: system\n  content: Answer from the document.\n"
        "- role: user\n  content: '{{ doc }} Q: {{ q }}'\n",
        encoding="utf-8",
    )
    (tmp_path / "tests.jsonl").write_text(
        '{"vars": {"q": "How long?", "doc": "file://docs/a.txt"}, "assert": [{"type": "contains", "value": "5"}]}\n'
        "\n"
        '{"description": "every doc", "vars": {"q": "Summarise", "doc": "file://docs/*.txt"}}\n',
        encoding="utf-8",
    )
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        """prompts: [file://chat.yaml]
providers: [openai:gpt-4o-mini]
tests:
  - file://tests.jsonl
  - vars: {q: x, doc: y}
    assert:
      - $ref: '#/assertionTemplates/missing'
""",
        encoding="utf-8",
    )
    result = convert_config(config, rootdir=tmp_path)
    [path] = write_suites(result, tmp_path / "out")
    suite = spec.load_suite(path)
    assert [(m.role, m.content) for m in suite.versions[0].messages] == [
        ("system", "Answer from the document."),
        ("user", "{{ doc }} Q: {{ q }}"),
    ]
    assert [(c.id, c.vars["doc"]) for c in suite.cases] == [
        ("test-1", "Refunds take 5 days."),
        ("every-doc-1", "Refunds take 5 days."),  # a glob is one case per file, as in promptfoo
        ("every-doc-2", "Shipping is free."),
        ("test-3", "y"),
    ]
    assert str(suite.cases[0].expect[0].value) == "5"
    [ref] = result.todos
    assert ref.location.line == 7 and "#/assertionTemplates/missing" in ref.message
    assert "TODO(promptfoo): `$ref: #/assertionTemplates/missing`" in path.read_text("utf-8")


def test_provider_tools_and_tool_call_assertions(tmp_path: Path) -> None:
    (tmp_path / "tools.json").write_text(
        '[{"type": "function", "function": {"name": "lookup_order", "parameters": '
        '{"type": "object", "properties": {"id": {"type": "string"}}}}}]',
        encoding="utf-8",
    )
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        """prompts: ['Find order {{id}}']
providers:
  - id: openai:gpt-4o-mini
    config: {tools: file://tools.json, tool_choice: auto}
tests:
  - vars: {id: A1}
    assert:
      - type: is-valid-openai-tools-call
      - {type: finish-reason, value: tool_calls}
      - {type: not-ends-with, value: '?'}
""",
        encoding="utf-8",
    )
    result = convert_config(config)
    [path] = write_suites(result, tmp_path / "out")
    suite = spec.load_suite(path)
    assert suite.params["tools"][0]["function"]["name"] == "lookup_order"
    assert suite.params["tool_choice"] == "auto"
    assert [(e.name, e.value) for e in suite.cases[0].expect] == [
        ("is-valid-openai-tools-call", None),
        ("finish-reason", "tool_calls"),
        ("not-ends-with", "?"),
    ]
    assert result.todos == ()


def test_supported_tables_match_the_loader() -> None:
    from pytest_promptgate import assertions

    known = set(assertions.known_types())
    assert set(promptfoo.ASSERTION_TYPES.values()) <= known
    # Every promptfoo key kept is one the loader takes: type/value always, the others as a
    # type's option (the importer checks the type's own options before keeping one).
    options = {key for name in known for key in assertions.option_keys(name)}
    assert set(promptfoo.ASSERTION_KEYS_KEPT) <= set(spec.PROMPTFOO_EXPECTATION_KEYS) | options
    for key in ("weight", "metric"):
        assert all(key in assertions.option_keys(t) for t in promptfoo.ASSERTION_TYPES.values())
    assert promptfoo.CODE_TYPES.isdisjoint(promptfoo.ASSERTION_TYPES)


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("refund, return, exchange", ["refund", "return", "exchange"]),
        ('bug, "crash, freeze" , x', ["bug", "crash, freeze", "x"]),
        ('a,,b, "say ""hi"""', ["a", "b", 'say "hi"']),
    ],
)
def test_comma_lists_split_like_promptfoo(text: str, items: list[str]) -> None:
    assert parse_comma_separated(text) == items


def test_unterminated_quote_in_a_comma_list_is_a_todo(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        "prompts: ['{{q}}']\ntests:\n  - vars: {q: a}\n    assert:\n"
        "      - {type: contains-any, value: 'a, \"b'}\n",
        encoding="utf-8",
    )
    result = convert_config(config)
    [todo] = result.todos
    assert todo.location.line == 5 and "contains-any" in todo.message


def test_never_overwrites_without_force(tmp_path: Path) -> None:
    config = fixture_copy("getting-started", tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "getting-started-openai-o4-mini.promptgate.yaml"
    existing.write_text("prompt: mine\nuser: hi\n", encoding="utf-8")
    result = convert_config(config)
    with pytest.raises(UsageError, match="would overwrite .*o4-mini"):
        write_suites(result, out)
    assert existing.read_text(encoding="utf-8") == "prompt: mine\nuser: hi\n"
    assert not (out / "getting-started-openai-gpt-4-1.promptgate.yaml").exists()
    write_suites(result, out, force=True)
    assert spec.load_suite(existing).prompt == "getting-started-openai-o4-mini"


def test_bad_config_is_one_error_with_a_line(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text("prompts:\n  - 'a'\n tests: [\n", encoding="utf-8")
    with pytest.raises(PromptgateError) as info:
        convert_config(config)
    assert info.value.location is not None and info.value.location.line >= 2
    config.write_text("providers: [openai:gpt-4o-mini]\n", encoding="utf-8")
    with pytest.raises(PromptgateError, match="no `prompts`"):
        convert_config(config)
    config.write_text("prompts: [file://missing.txt]\n", encoding="utf-8")
    with pytest.raises(PromptgateError, match="missing.txt` not found") as info:
        convert_config(config)
    assert info.value.location is not None and info.value.location.line == 1
    config.write_text("prompts: ['{{q}}']\ntests: file://t.csv\n", encoding="utf-8")
    (tmp_path / "t.csv").write_text("q,__expected\na,b,c\n", encoding="utf-8")
    with pytest.raises(PromptgateError, match="3 fields but the header has 2") as info:
        convert_config(config, rootdir=tmp_path)
    assert str(info.value.location) == "t.csv:2"


def test_cli_main_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = fixture_copy("simple-test", tmp_path)
    out = tmp_path / "prompts"
    assert cli.main(["import", "promptfoo", str(config), "-o", str(out)]) == 0
    report = capsys.readouterr().out
    assert f"wrote {out / 'simple-test.promptgate.yaml'} (2 version(s), 5 case(s))" in report
    assert "not converted (2;" in report
    javascript_line = line_of(config, "- type: javascript")
    assert f"promptfooconfig.yaml:{javascript_line}: javascript assertion" in report
    # A second run refuses to overwrite: one line on stderr, exit status 2, no traceback.
    assert cli.main(["import", "promptfoo", str(config), "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert "would overwrite" in error and "--force" in error and "Traceback" not in error
    assert cli.main(["import", "promptfoo", str(config), "-o", str(out), "--force"]) == 0


def test_a_suite_that_does_not_load_is_reported_with_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nunjucks reads `.length` of a string; Jinja2 has no such attribute: the loader says so.
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        "prompts: ['Summarise in {{ text.length }} words: {{ text }}']\n"
        "providers: [openai:gpt-4o-mini]\ntests:\n  - vars: {text: hello there}\n",
        encoding="utf-8",
    )
    assert cli.main(["import", "promptfoo", str(config), "-o", str(tmp_path / "out")]) == 1
    report = capsys.readouterr().out
    assert "the written suites do not load yet:" in report
    assert "length" in report.split("do not load yet:")[1]


def test_module_entry_point_end_to_end(tmp_path: Path) -> None:
    config = fixture_copy("llama-gpt-comparison", tmp_path)
    command = [sys.executable, "-m", "pytest_promptgate", "import", "promptfoo", str(config)]
    completed = subprocess.run(
        [*command, "-o", str(tmp_path / "prompts"), "--name", "uncensored"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "uncensored-ollama-llama2.promptgate.yaml (1 version(s), 10 case(s))" in completed.stdout
    assert len(list((tmp_path / "prompts").glob("*.promptgate.yaml"))) == 3


VERDICT_FIXTURES = sorted(
    p.name for p in FIXTURES.iterdir() if (p / "expected_verdicts.yaml").is_file()
)


@pytest.mark.parametrize("name", VERDICT_FIXTURES)
def test_converted_suites_give_promptfoos_verdicts(name: str, tmp_path: Path) -> None:
    """Each such fixture states, per case, a fixed model output and the verdict promptfoo gives
    it (derived from promptfoo's source, cited in its expected_verdicts.yaml). Every converted
    suite, run through the engine against FakeOpenAI replying those outputs, agrees."""
    result, written = import_fixture(name, tmp_path)
    assert result.todos == ()
    expected = suite_data(FIXTURES / name / "expected_verdicts.yaml")
    verdicts: dict[tuple[str, str, str], str] = {}
    with FakeOpenAI() as server:
        jobs = []
        for path in written:
            suite = spec.load_suite(path)
            assert {c.id for c in suite.cases} == set(expected)
            for version in suite.versions:
                for case in suite.cases:
                    messages = suite.rendered[(version.label, case.id)]
                    server.answers[messages[-1]["content"]] = expected[case.id]["output"]
                    jobs.append(
                        Job(
                            prompt=suite.prompt,
                            version=version.label,
                            case=case,
                            model="openai/fake-model",
                            messages=messages,
                            params={
                                **suite.params,
                                "api_base": server.base_url,
                                "api_key": "sk-test",
                            },
                            repeat=1,
                            suite_dir=path.parent,
                            rootdir=None,
                            location=case.location,
                            node_id=f"{path.name}::{suite.prompt}::{version.label}::{case.id}",
                        )
                    )
        settings = RunSettings(concurrency=4, timeout_s=10.0, backoff_base_s=0.01)
        for outcome in run_jobs(jobs, settings).results:
            verdicts[(outcome.prompt, outcome.version, outcome.case)] = outcome.status
    assert len(verdicts) == len(jobs) >= len(expected)
    for (prompt, label, case_id), status in verdicts.items():
        wanted = "passed" if expected[case_id]["promptfoo"] == "pass" else "failed"
        assert status == wanted, (prompt, label, case_id, status)
    assert set(verdicts.values()) == {"passed", "failed"}

"""Hostile suites: whatever the file holds, loading ends as a Suite or a SuiteError with a line.

Random YAML documents, random text, and mutations of a valid suite (keys deleted or renamed,
values replaced by other types or random strings, characters inserted or removed). Any other
exception is a bug: users must see one readable message, never a traceback.

No generated suite uses a `python` key: a random `module:function` reference would run code.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_promptgate import spec
from pytest_promptgate.model import Suite, SuiteError

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SCHEMA_WORDS = sorted(
    set(
        spec.TOP_KEYS
        + spec.CASE_KEYS
        + spec.DEFAULTS_KEYS
        + spec.MESSAGE_KEYS
        + spec.USAGE_KEYS
        + spec.FINETUNE_KEYS
        + spec.PROMPTFOO_EXPECTATION_KEYS
    )
    | {
        "equals",
        "contains",
        "not-contains",
        "one-of",
        "regex",
        "word-count",
        "json-schema",
        "is-json",
        "llm-rubric",
        "cost",
        "latency",
        "user",
        "system",
        "assistant",
        "__expected",
    }
    - {"python"}
)
INTERESTING_TEXT = [
    "{{ ticket }}",
    "{{ missing }}",
    "{{ ''.__class__ }}",
    "{% if %}",
    "{{",
    "a::b",
    "case-1",
    "0.8",
    "80",
    "cases.jsonl",
    "t.txt",
    "missing.csv",
    "not-",
    "[",
    "{",
    "*alias",
    "&anchor",
    "!!python/object",
    "equals:billing",
    "user",
    "skip",
    "-dash",
]

keys = st.one_of(st.sampled_from(SCHEMA_WORDS), st.text(max_size=8)).filter(lambda k: k != "python")
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(INTERESTING_TEXT),
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=15,
)
documents = st.one_of(st.dictionaries(keys, values, max_size=10), values)
yaml_alphabet = st.sampled_from(
    list("ab:-[]{}'\"!&*#|>?,%@`~.01 \t\n") + ["prompt", "user", "cases", "{{ x }}"]
)

VALID_SUITE: dict[str, Any] = {
    "prompt": "triage",
    "description": "Route tickets",
    "model": "openai/m",
    "params": {"temperature": 0, "max_tokens": 5},
    "threshold": 0.8,
    "finetune_after": 3,
    "repeat": 1,
    "rpm": 60,
    "usage": {"calls_per_month": 1000, "months": 12},
    "finetune": {"training_cost_usd": [500, 5000], "inference_multiplier": 2},
    "versions": {
        "v1": {"system": "Classify.", "user": "{{ ticket }}"},
        "v2": {
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": "T: {{ ticket }}"},
            ]
        },
        "v3": {"system": "S", "template": "t.txt"},
    },
    "defaults": {"expect": [{"one-of": ["billing", "bug"]}], "tags": ["triage"], "repeat": 1},
    "cases": [
        {
            "id": "a",
            "vars": {"ticket": "x"},
            "expect": [{"equals": "billing"}],
            "tags": ["pay"],
            "ideal": "billing",
        },
        {
            "vars": {"ticket": "y"},
            "expect": [{"type": "not-contains", "value": "sorry"}, "is-json"],
            "repeat": 2,
        },
    ],
    "cases_file": "cases.jsonl",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "t.txt").write_text("Ticket: {{ ticket }}\n")
    (root / "cases.jsonl").write_text(
        '{"id": "f1", "ticket": "z", "expect": [{"contains": "b"}]}\n'
    )
    (root / "cases.csv").write_text("id,ticket,expect\nc1,q,equals:bug\n")
    return root


def load_text(workdir: Path, text: str) -> Suite | SuiteError:
    path = workdir / "fuzz.promptgate.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        return spec.load_suite(path, rootdir=workdir)
    except SuiteError as err:
        return err


def assert_clean_outcome(outcome: Suite | SuiteError) -> None:
    if isinstance(outcome, Suite):
        assert outcome.versions, "a loaded suite has at least one version"
        return
    assert outcome.location is not None, f"no location: {outcome.message}"
    assert outcome.location.line >= 1
    assert outcome.location.file
    assert outcome.message and "Traceback" not in outcome.format()


def dump(document: Any) -> str:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


def test_the_valid_suite_loads(workdir):
    suite = load_text(workdir, dump(VALID_SUITE))
    assert isinstance(suite, Suite), suite
    assert [c.id for c in suite.cases] == ["a", "case-2", "f1"]


@FUZZ
@given(document=documents)
def test_random_yaml_documents(workdir, document):
    assert_clean_outcome(load_text(workdir, dump(document)))


SETTINGS_KEYS = [k for k in spec.TOP_KEYS if k not in spec.SOURCE_KEYS + ("prompt", "versions")]


@FUZZ
@given(document=st.dictionaries(st.sampled_from(SETTINGS_KEYS), values, max_size=6))
def test_random_documents_with_a_prompt_and_a_version(workdir, document):
    # Known top-level keys with random values, past the first checks: the deeper checks
    # (cases, defaults, expectations, settings) are what this reaches.
    document = {"prompt": "p", "user": "{{ ticket }}", **document}
    assert_clean_outcome(load_text(workdir, dump(document)))


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.lists(yaml_alphabet, max_size=60).map("".join)))
def test_random_text(workdir, text):
    assert_clean_outcome(load_text(workdir, text))


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a document: a tuple of keys/indices from the root."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, prefix + (index,))
    return found


def mutate(document: Any, path: tuple, operation: str, replacement: Any) -> Any:
    document = copy.deepcopy(document)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if operation == "delete":
        del parent[last]
    elif operation == "rename" and isinstance(parent, dict) and isinstance(replacement, str):
        if replacement != "python":
            parent[replacement] = parent.pop(last)
    else:
        parent[last] = replacement
    return document


@FUZZ
@given(data=st.data())
def test_mutated_valid_suite(workdir, data):
    document = VALID_SUITE
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        places = paths(document)
        if not places:
            break
        path = data.draw(st.sampled_from(places), label="path")
        operation = data.draw(
            st.sampled_from(["delete", "rename", "replace", "string"]), label="operation"
        )
        if operation == "rename":
            replacement = data.draw(keys, label="new key")
        elif operation == "string":
            replacement = data.draw(
                st.one_of(st.text(max_size=30), st.sampled_from(INTERESTING_TEXT)), label="text"
            )
        else:
            replacement = data.draw(values, label="value")
        document = mutate(document, path, operation, replacement)
    assert_clean_outcome(load_text(workdir, dump(document)))


@FUZZ
@given(data=st.data())
def test_mutated_valid_suite_text(workdir, data):
    text = dump(VALID_SUITE)
    for _ in range(data.draw(st.integers(1, 5), label="edits")):
        position = data.draw(st.integers(0, len(text)), label="position")
        if data.draw(st.booleans(), label="insert"):
            text = text[:position] + data.draw(yaml_alphabet, label="inserted") + text[position:]
        else:
            text = text[:position] + text[position + data.draw(st.integers(1, 10), label="cut") :]
    assert_clean_outcome(load_text(workdir, text))

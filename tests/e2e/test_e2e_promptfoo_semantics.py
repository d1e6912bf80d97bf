"""End-to-end: a suite written with promptfoo's assertion semantics runs through pytest.

A shared default expectation compares with each case's `{{ expected }}` and names a metric; a
case passes on a weighted `threshold`; an `assert-set` groups checks; a `transform` reads a
field of a JSON reply; `contains-any` takes promptfoo's comma string; `latency` reads
`threshold`. The fake model answers; the JSON and Markdown reports are read back.
"""

from __future__ import annotations

import json

import pytest

SUITE = """\
prompt: triage
model: openai/fake-model
params: {api_base: "BASE", api_key: sk-test-key, temperature: 0}
threshold: 0.5
defaults:
  expect:
    - {type: equals, value: "{{ expected }}", metric: accuracy, transform: "from_json(output).label"}
    - {type: latency, threshold: 60000}
versions:
  v1:
    user: "reply: {{ v1 }}"
  v2:
    user: "reply: {{ v2 }}"
cases:
  - id: refund
    vars:
      expected: billing
      v1: '{"label": "shipping", "note": "sorry, a refund"}'
      v2: '{"label": "billing", "note": "sorry, a refund"}'
    threshold: 0.75
    expect:
      - {type: contains-any, value: "refund, return, exchange", weight: 3, metric: policy}
  - id: late
    vars:
      expected: shipping
      v1: '{"label": "shipping", "note": "it is late"}'
      v2: '{"label": "shipping", "note": "We apologise: it is late"}'
    expect:
      - type: assert-set
        metric: tone
        threshold: 0.5
        assert:
          - {icontains: sorry}
          - {icontains: apologi}
"""


@pytest.fixture
def promptfoo_run(pytester, fake_openai):
    pytester.makefile(".promptgate.yaml", triage=SUITE.replace("BASE", fake_openai.base_url))
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--promptgate-no-history",
        "--promptgate-report",
        "report.json",
        "--promptgate-markdown",
        "report.md",
    )
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    return report, (pytester.path / "report.md").read_text(encoding="utf-8")


def statuses(report) -> dict[tuple[str, str], str]:
    return {(c["version"], c["case"]): c["status"] for c in report["cases"]}


def test_cases_are_decided_with_promptfoos_semantics(promptfoo_run):
    report, _ = promptfoo_run
    assert statuses(report) == {
        # wrong label (weight 1) but the refund policy (weight 3): 3/4 reaches the case's 0.75
        ("v1", "refund"): "passed",
        ("v2", "refund"): "passed",
        # the set needs one of its two tone checks; v1 has none
        ("v1", "late"): "failed",
        ("v2", "late"): "passed",
    }
    refund_v1 = next(c for c in report["cases"] if (c["version"], c["case"]) == ("v1", "refund"))
    assert refund_v1["failures"] == [
        {"expectation": "equals", "reason": "expected 'billing', got 'shipping'"}
    ]


def test_reports_aggregate_each_metric_per_version(promptfoo_run):
    report, markdown = promptfoo_run
    (prompt,) = report["prompts"]
    metrics = {v["version"]: v["metrics"] for v in prompt["versions"]}
    assert metrics == {
        "v1": {
            "accuracy": {"passed": 1, "n": 2, "rate": 0.5},
            "policy": {"passed": 1, "n": 1, "rate": 1.0},
            "tone": {"passed": 0, "n": 1, "rate": 0.0},
        },
        "v2": {
            "accuracy": {"passed": 2, "n": 2, "rate": 1.0},
            "policy": {"passed": 1, "n": 1, "rate": 1.0},
            "tone": {"passed": 1, "n": 1, "rate": 1.0},
        },
    }
    assert "- v1 metrics: accuracy 1/2 (50%), policy 1/1 (100%), tone 0/1 (0%)" in markdown

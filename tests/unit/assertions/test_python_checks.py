"""python checks (assertions/python.py)."""

from __future__ import annotations

import pytest
from helpers.expectation_checks import check

from pytest_promptgate.assertions import (
    validate_expectation,
)
from pytest_promptgate.model import CallResult, Expectation, ProviderFailure, ToolCall

# --------------------------------------------------------------------------- python checks

CHECKS_SOURCE = """
import asyncio

def as_bool(output, context):
    return output == context["vars"]["want"]

def as_score(output, context):
    return len(output) / 10

def as_tuple(output, context):
    return ("ok" in output, "wanted ok in " + output)

def as_dict(output, context):
    return {"pass": output.startswith("y"), "score": 0.9, "reason": "starts with y?"}

def as_score_dict(output, context):
    return {"score": 0.2, "reason": "weak"}

async def as_async(output, context):
    await asyncio.sleep(0)
    return context["call"]["latency_ms"] < 1000

def raises(output, context):
    raise KeyError("missing-thing")

def returns_none(output, context):
    return None

def sees_config(output, context):
    return context["config"] == {"level": 2} and context["model"] == "m1"
"""


@pytest.fixture
def checks_dir(tmp_path):
    (tmp_path / "checks.py").write_text(CHECKS_SOURCE)
    return tmp_path


@pytest.mark.parametrize(
    "function,value_extra,output,passed,reason_part",
    [
        ("as_bool", {}, "yes", True, ""),
        ("as_bool", {}, "no", False, "returned False"),
        ("as_score", {}, "123456", True, "score 0.6 >= threshold 0.5"),
        ("as_score", {}, "1234", False, "score 0.4 < threshold 0.5"),
        ("as_score", {"threshold": 0.3}, "1234", True, "threshold 0.3"),
        ("as_tuple", {}, "is ok", True, "wanted ok"),
        ("as_tuple", {}, "bad\x1b[31m", False, "wanted ok in bad\\x1b[31m"),
        ("as_dict", {}, "yes", True, "starts with y?"),
        ("as_dict", {}, "no", False, "starts with y?"),
        ("as_score_dict", {}, "x", False, "score 0.2 < threshold 0.5: weak"),
        ("as_async", {}, "x", True, ""),
        ("raises", {}, "x", False, "raised KeyError: 'missing-thing'"),
        ("returns_none", {}, "x", False, "returned NoneType"),
        ("sees_config", {"config": {"level": 2}}, "x", True, ""),
    ],
)
def test_python_check_return_shapes(checks_dir, function, value_extra, output, passed, reason_part):
    ref = f"checks.py:{function}"
    value = {"function": ref, **value_extra} if value_extra else ref
    validate_expectation(Expectation("python", value), checks_dir)
    result = check("python", value, output, suite_dir=checks_dir, vars={"want": "yes"}, model="m1")
    assert result.passed is passed, result.reason
    assert reason_part in result.reason


def test_python_check_that_raises_fails_even_when_negated(checks_dir):
    result = check("python", "checks.py:raises", "x", negate=True, suite_dir=checks_dir)
    assert not result.passed and "KeyError" in result.reason


def test_python_check_by_module_name_on_the_suite_dir(tmp_path):
    (tmp_path / "promptgate_unit_checks_mod.py").write_text(
        "def short(output, context):\n    return len(output) < 5\n"
    )
    value = "promptgate_unit_checks_mod:short"
    validate_expectation(Expectation("python", value), tmp_path)
    assert check("python", value, "abc", suite_dir=tmp_path).passed
    assert not check("python", value, "abcdefgh", suite_dir=tmp_path).passed
    assert (
        str(tmp_path) not in __import__("sys").path
    )  # the suite dir is added only while importing


def test_python_check_import_problems_are_failures(tmp_path):
    (tmp_path / "broken.py").write_text("def oops(:\n")
    broken = check("python", "broken.py:oops", "x", suite_dir=tmp_path)
    assert not broken.passed and "cannot import broken.py: SyntaxError" in broken.reason
    (tmp_path / "fine.py").write_text("x = 1\n")
    missing = check("python", "fine.py:nope", "x", suite_dir=tmp_path)
    assert not missing.passed and "has no function 'nope'" in missing.reason
    no_module = check("python", "promptgate_no_such_module_zz:f", "x", suite_dir=tmp_path)
    assert not no_module.passed and "ModuleNotFoundError" in no_module.reason


def test_python_check_may_raise_provider_failure(tmp_path):
    (tmp_path / "prov.py").write_text(
        "from pytest_promptgate.model import CallResult, ProviderFailure\n"
        "def judge(output, context):\n    raise ProviderFailure(CallResult(output=None, error='down'))\n"
    )
    with pytest.raises(ProviderFailure, match="down"):
        check("python", "prov.py:judge", "x", suite_dir=tmp_path)


def test_python_file_check_imports_its_siblings_and_modules_on_rootdir(tmp_path):
    suite_dir = tmp_path / "suites"
    (suite_dir / "lib").mkdir(parents=True)
    (suite_dir / "lib" / "promptgate_unit_helper.py").write_text("LIMIT = 3\n")
    (suite_dir / "lib" / "nested_checks.py").write_text(
        "from promptgate_unit_helper import LIMIT\ndef short(output, context):\n    return len(output) <= LIMIT\n"
    )
    (tmp_path / "promptgate_unit_root_checks.py").write_text(
        "def always(output, context):\n    return (True, 'fine')\n"
    )
    assert check("python", "lib/nested_checks.py:short", "abc", suite_dir=suite_dir).passed
    assert not check("python", "lib/nested_checks.py:short", "abcd", suite_dir=suite_dir).passed
    rooted = check(
        "python", "promptgate_unit_root_checks:always", "x", suite_dir=suite_dir, rootdir=tmp_path
    )
    assert rooted.passed and rooted.reason == "fine"


def test_python_check_sees_tool_calls_finish_reason_and_structured_output(tmp_path):
    (tmp_path / "tool_checks.py").write_text(
        "import json\n"
        "def called_refund(output, context):\n"
        "    call = context['call']\n"
        "    json.dumps(call)  # every value is JSON-able\n"
        "    (first,) = call['tool_calls']\n"
        "    first['arguments']['order_id'] = 'changed'  # a copy: the next check is unaffected\n"
        "    return (\n"
        "        first['name'] == 'refund' and call['finish_reason'] == 'tool_calls'\n"
        "        and call['structured'] == {'ok': True},\n"
        "        repr(call['tool_calls']) + ' ' + str(call['finish_reason']),\n"
        "    )\n"
    )
    tool_call = ToolCall(
        id="call_1", name="refund", arguments={"order_id": "A1"}, raw_arguments='{"order_id":"A1"}'
    )
    reply = CallResult(
        output="",
        tool_calls=(tool_call,),
        finish_reason="tool_calls",
        structured={"ok": True},
    )
    result = check("python", "tool_checks.py:called_refund", "", suite_dir=tmp_path, call=reply)
    assert result.passed, result.reason
    assert "'raw_arguments': '{\"order_id\":\"A1\"}'" in result.reason
    assert "'id': 'call_1'" in result.reason
    assert tool_call.arguments == {"order_id": "A1"}  # the check changed its copy only
    plain = check("python", "tool_checks.py:called_refund", "hi", suite_dir=tmp_path)
    assert not plain.passed  # a plain text reply has no tool calls: unpacking raised
    assert "ValueError" in plain.reason

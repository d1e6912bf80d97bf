"""What an errored or failed case, or a suite that does not load, says in the terminal.

A few readable lines, never pytest's or pluggy's internals: the case and where it is defined,
what went wrong (the provider's error kind and message, or the failed expectations with the
expected and the actual output, clipped), and a hint when there is one. ``verbose >= 2``
(pytest ``-vv``) adds the rendered prompt and the whole output.

    FAILED ticket-triage::v1::double-charge (openai/gpt-4o-mini) at prompts/triage.promptgate.yaml:12
      ✗ equals (prompts/triage.promptgate.yaml:13): expected "billing", got "Billing."
      output: "Billing."
      hint: the case counts against v1's success rate; ...

Pure functions of the result: the plugin calls them from ``repr_failure``.
"""

from __future__ import annotations

from pytest_promptgate.model import (
    ERROR,
    FAILED,
    CallResult,
    CaseResult,
    PromptgateError,
    SampleResult,
)
from pytest_promptgate.textsafe import printable

LINE_CHARS = 200  # one message or reason line; -vv shows them whole
OUTPUT_CHARS = 160
VERBOSE_OUTPUT_CHARS = 4000
SHOWN_CHECKS = 3  # failed expectations listed; the rest are counted

_ERROR_WORDS = {
    "credentials": "missing credentials",
    "auth": "authentication failed",
    "permission": "permission denied",
    "model_not_found": "unknown model",
    "bad_request": "bad request",
    "context_window": "prompt too long",
    "content_policy": "refused by the content policy",
    "rate_limit": "rate limited",
    "server": "provider server error",
    "timeout": "timed out",
    "connection": "connection failed",
    "malformed": "malformed reply",
    "replay_miss": "not in the replay cache",
    "budget": "over budget",
    "config": "configuration error",
}


def explain_case(result: CaseResult, verbose: int = 0) -> str:
    """The terminal text of one errored or failed case (empty for a passed one)."""
    if result.status == ERROR:
        return _explain_error(result, verbose)
    if result.status == FAILED:
        return _explain_failure(result, verbose)
    return ""


def explain_load_error(err: BaseException) -> str:
    """The terminal text of a suite that cannot be loaded: where, what, and the hint."""
    if isinstance(err, PromptgateError):
        where = f" {err.location}" if err.location else ""
        lines = [f"ERROR loading{where}", f"  {_clip(err.message, LINE_CHARS * 2)}"]
        if err.hint:
            lines.append(f"  hint: {_clip(err.hint, LINE_CHARS)}")
        return "\n".join(lines)
    where = ""
    mark = getattr(err, "problem_mark", None)  # a YAML error carries its position
    if mark is not None and getattr(mark, "name", None):
        where = f" {mark.name}:{mark.line + 1}"
    message = str(err).splitlines()[0] if str(err) else ""
    return "\n".join(
        [
            f"ERROR loading{where}",
            f"  {type(err).__name__}: {_clip(message, LINE_CHARS)}",
            "  hint: this is not a suite error promptgate knows; run with --tb=long for the traceback",
        ]
    )


def _header(status: str, result: CaseResult) -> str:
    where = f" at {result.location}" if result.location else ""
    return f"{status} {result.prompt}::{result.version}::{result.case} ({result.model}){where}"


def _explain_error(result: CaseResult, verbose: int) -> str:
    errors = [s.call for s in result.samples if not s.call.ok]
    lines = [_header("ERROR", result)]
    if not errors:
        lines.append("  no result was recorded for this case")
        return "\n".join(lines)
    call = errors[0]
    kind = _ERROR_WORDS.get(call.error_kind or "", call.error_kind or "error")
    attempts = f" after {call.attempts} attempts" if call.attempts > 1 else ""
    limit = VERBOSE_OUTPUT_CHARS if verbose >= 2 else LINE_CHARS
    lines.append(f"  {kind}{attempts}: {_clip(call.error or 'unknown error', limit)}")
    if len(result.samples) > 1:
        lines.append(f"  {len(errors)} of {len(result.samples)} samples errored")
    hint = _error_hint(call, result.model)
    if hint:
        lines.append(f"  hint: {hint}")
    lines.append("  an error is neither a pass nor a prompt failure: it is left out of the rate")
    if verbose >= 2:
        lines += _prompt_lines(result)
    return "\n".join(lines)


def _explain_failure(result: CaseResult, verbose: int) -> str:
    failing = [s for s in result.samples if s.status == FAILED]
    lines = [_header("FAILED", result)]
    if not failing:
        return "\n".join(lines)
    sample = failing[0]
    if len(result.samples) > 1:
        lines.append(
            f"  {len(failing)} of {len(result.samples)} samples failed; sample {sample.sample} shown"
        )
    lines += _check_lines(sample, verbose)
    limit = VERBOSE_OUTPUT_CHARS if verbose >= 2 else OUTPUT_CHARS
    output = sample.call.output
    if not output and sample.call.tool_calls:  # a tool-call-only reply: show the calls
        lines.append(f"  tool calls: {_tool_calls(sample.call, limit)}")
    else:
        lines.append(f"  output: {_quote(output, limit) if output is not None else '<no output>'}")
    if verbose >= 2:
        lines += _prompt_lines(result)
    return "\n".join(lines)


def _tool_calls(call: CallResult, limit: int) -> str:
    """``name(arguments as JSON)`` for each tool call of a reply, clipped as one line."""
    import json

    shown = []
    for tool_call in call.tool_calls:
        arguments = tool_call.raw_arguments  # not JSON: as the model sent it
        if tool_call.arguments is not None:
            try:
                arguments = json.dumps(tool_call.arguments, ensure_ascii=False, sort_keys=True)
            except (TypeError, ValueError):
                pass
        shown.append(f"{tool_call.name}({arguments})")
    return _clip("; ".join(shown), limit)


def _check_lines(sample: SampleResult, verbose: int) -> list[str]:
    failed = [c for c in sample.checks if not c.passed]
    if not failed:  # a weighted score below the case's threshold, every check passing
        return [f"  ✗ the weighted score is below the case's threshold ({sample.threshold:g})"]
    shown = failed if verbose >= 2 else failed[:SHOWN_CHECKS]
    limit = VERBOSE_OUTPUT_CHARS if verbose >= 2 else LINE_CHARS
    lines = []
    for check in shown:
        where = f" ({check.location})" if check.location else ""
        lines.append(f"  ✗ {check.expectation}{where}: {_clip(check.reason or 'failed', limit)}")
    if len(failed) > len(shown):
        lines.append(
            f"  … and {len(failed) - len(shown)} more failed expectation(s) (-vv shows all)"
        )
    return lines


def _prompt_lines(result: CaseResult) -> list[str]:
    lines = ["  rendered prompt:"]
    for message in result.messages:
        role = message.get("role", "?")
        lines.append(f"    [{role}] {_quote(message.get('content'), VERBOSE_OUTPUT_CHARS)}")
    return lines


def _error_hint(call: CallResult, model: str) -> str | None:
    kind = call.error_kind
    if kind == "credentials":
        from pytest_promptgate.preflight import LOCAL_MODEL, known_env

        names = " / ".join(known_env(model)) or "the provider's API key variable"
        return f"set {names}, or run without a key: --promptgate-model {LOCAL_MODEL}"
    if kind == "auth":
        return "the provider refused the API key: check that it is current and for this provider"
    if kind == "permission":
        return "the key has no access to this model (or project, or region)"
    if kind == "model_not_found":
        return "check the model name: litellm's provider/model form, e.g. openai/gpt-4o-mini"
    if kind == "context_window":
        return "the rendered prompt is longer than the model's context: shorten it or the case"
    if kind == "rate_limit":
        return "lower --promptgate-concurrency, or set `rpm:` in the suite (or --promptgate-rpm)"
    if kind == "timeout":
        return "raise --promptgate-timeout, or lower max_tokens"
    if kind in ("server", "connection", "malformed"):
        return "the provider did not answer properly after the retries: run again later"
    return None


def _clip(text: object, limit: int) -> str:
    value = printable(text).replace("\n", " ⏎ ")
    if len(value) <= limit:
        return value
    return value[:limit] + f"… ({len(value) - limit} more characters)"


def _quote(text: object, limit: int) -> str:
    if text is None:
        return "<none>"
    return '"' + _clip(text, limit) + '"'

"""``promptgate export-finetune``: labelled cases as OpenAI chat-format JSONL.

One line per labelled case: ``{"messages": [...the current version's rendered turns...,
{"role": "assistant", "content": target}]}``. The target is the case's ``ideal``, else its
``equals`` value, else its single ``one-of`` value (see ``advisor.target_output``); cases
without one are skipped and counted.

When the target is a tool call (``ideal: {tool_call: {name, arguments}}``), the last turn is
``{"role": "assistant", "tool_calls": [{"id", "type": "function", "function": {"name",
"arguments": "<JSON text>"}}]}`` and the line carries the version's ``tools`` (OpenAI's chat
fine-tuning format for function calling). Multi-turn prompts keep their ``assistant``
tool-call and ``tool`` turns, and image parts, as rendered. Every line is validated before anything is written,
and files are replaced atomically, so a failed export never leaves half a dataset.

The optional hold-out split (the seed: "test on a hold-out set") is deterministic for a
given seed and case set, so re-exporting does not leak test cases into training.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_promptgate.advisor import MINIMUM_EXAMPLES, target_output
from pytest_promptgate.atomic import write_atomic
from pytest_promptgate.model import Case, Location, PromptgateError, Suite, UsageError

ROLES = ("system", "user", "assistant", "tool")
MESSAGE_KEYS = frozenset({"role", "content", "tool_calls", "tool_call_id"})


@dataclass(frozen=True)
class ExportSummary:
    written: int  # lines in the training file
    skipped_unlabelled: int
    holdout_written: int
    paths: tuple[Path, ...]


def assistant_target(case: Case) -> dict[str, Any] | None:
    """The assistant turn a case wants (text or tool calls), or None when it has no target."""
    if case.ideal_tool_calls:
        return {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": f"call_{index}",
                    "type": "function",
                    "function": {
                        "name": str(call["name"]),
                        "arguments": json.dumps(call.get("arguments", {}), ensure_ascii=False),
                    },
                }
                for index, call in enumerate(case.ideal_tool_calls, start=1)
            ],
        }
    target = target_output(case)
    return None if target is None else {"role": "assistant", "content": target}


def _render_messages(suite: Suite, case: Case) -> Sequence[Mapping[str, Any]]:
    # Imported here: render.py pulls in Jinja2, which `promptgate --help` should not pay for.
    from pytest_promptgate.render import render_messages

    return render_messages(suite, suite.current, case.vars, case=case)


def _load_suite(path: Path) -> Suite:
    from pytest_promptgate.spec import load_suite

    return load_suite(path)


def holdout_path(out: Path) -> Path:
    """``data.jsonl`` → ``data.holdout.jsonl`` next to it."""
    return out.with_name(f"{out.stem}.holdout{out.suffix or '.jsonl'}")


def validate_example(example: Mapping[str, Any], where: Location | None) -> str:
    """One JSONL line for ``example``, or a PromptgateError saying what is wrong."""

    def bad(problem: str) -> PromptgateError:
        return PromptgateError(
            f"cannot export this case for fine-tuning: {problem}",
            where,
            "the OpenAI chat format needs system/user/assistant turns with non-empty text",
        )

    messages = example.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        raise bad("it needs at least one prompt turn and the assistant target")
    if set(example) - {"messages", "tools"}:
        raise bad(f"unexpected keys {sorted(set(example) - {'messages', 'tools'})}")
    for message in messages:
        problem = _turn_problem(message)
        if problem:
            raise bad(problem)
    if messages[-1]["role"] != "assistant":
        raise bad("the last turn must be the assistant target")
    if not any(m["role"] == "user" for m in messages):
        raise bad("there is no user turn")
    line = json.dumps(example, ensure_ascii=False)
    if "\n" in line or json.loads(line) != example:
        raise bad("it does not survive a JSON round trip")
    return line


def _turn_problem(message: Any) -> str | None:
    """What is wrong with one chat turn for fine-tuning, or None."""
    if not isinstance(message, dict) or "role" not in message or set(message) - MESSAGE_KEYS:
        return (
            f"a turn has `role`, `content` and, for tools, `tool_calls`/`tool_call_id`: {message!r}"
        )
    role = message["role"]
    if role not in ROLES:
        return f"unsupported role {role!r}"
    content = message.get("content")
    calls = message.get("tool_calls")
    if calls is not None:
        if role != "assistant" or not isinstance(calls, list) or not calls:
            return "only an assistant turn carries `tool_calls`, a non-empty list"
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if (
                not isinstance(function, dict)
                or not function.get("name")
                or not isinstance(function.get("arguments"), str)
            ):
                return f"a tool call needs a function name and JSON-text arguments: {call!r}"
        if content is None or (isinstance(content, str) and not content.strip()):
            return None  # a calls-only turn
    if ("tool_call_id" in message) != (role == "tool"):
        return "a `tool` turn, and only it, has `tool_call_id`"
    if isinstance(content, list):  # content parts: text and images
        if role != "user" or not content:
            return f"only a user turn may carry content parts, found them in a {role} turn"
        if not all(isinstance(p, dict) and p.get("type") in ("text", "image_url") for p in content):
            return "content parts are `text` or `image_url`"
        return None
    if not isinstance(content, str) or not content.strip():
        return f"the {role} turn is empty"
    return None


def _holdout_count(total: int, holdout: float) -> int:
    if holdout <= 0.0 or total < 2:
        return 0
    # At least one example on each side once a split is asked for.
    return min(max(round(total * holdout), 1), total - 1)


def export_finetune(suite: Suite, out: Path, holdout: float = 0.0, seed: int = 0) -> ExportSummary:
    """Write the labelled cases of ``suite`` to ``out`` (and the hold-out split next to it)."""
    if not 0.0 <= holdout < 1.0:
        raise UsageError(f"--holdout must be in [0, 1), got {holdout}")
    out = Path(out)
    lines: list[tuple[str, str]] = []  # (case id, JSON line)
    skipped = 0
    tools = suite.params_for(suite.current).get("tools")
    for case in suite.cases:
        target = assistant_target(case)
        if target is None:
            skipped += 1
            continue
        rendered = [
            {key: value for key, value in m.items() if key in MESSAGE_KEYS}
            for m in _render_messages(suite, case)
        ]
        example: dict[str, Any] = {"messages": rendered + [target]}
        if tools and ("tool_calls" in target or any("tool_calls" in m for m in rendered)):
            example["tools"] = list(tools)
        lines.append((case.id, validate_example(example, case.location)))

    held_ids: set[str] = set()
    count = _holdout_count(len(lines), holdout)
    if count:
        ids = sorted(case_id for case_id, _ in lines)  # independent of file order
        random.Random(seed).shuffle(ids)
        held_ids = set(ids[:count])
    training = [line for case_id, line in lines if case_id not in held_ids]
    held = [line for case_id, line in lines if case_id in held_ids]

    write_atomic(out, "".join(line + "\n" for line in training))
    paths = [out]
    if count:
        write_atomic(holdout_path(out), "".join(line + "\n" for line in held))
        paths.append(holdout_path(out))
    return ExportSummary(
        written=len(training),
        skipped_unlabelled=skipped,
        holdout_written=len(held),
        paths=tuple(paths),
    )


def _run_export_command(args: argparse.Namespace) -> int:
    try:
        suite = _load_suite(Path(args.suite))
        summary = export_finetune(suite, Path(args.output), holdout=args.holdout, seed=args.seed)
    except PromptgateError as exc:
        print(f"error: {exc.format()}", file=sys.stderr)
        return 2
    message = f"wrote {summary.written} examples to {summary.paths[0]}"
    if summary.holdout_written:
        message += f" and {summary.holdout_written} held-out examples to {summary.paths[1]}"
    print(message)
    print(
        f"skipped {summary.skipped_unlabelled} unlabelled cases "
        "(no `ideal`, `equals` or single-value `one-of`)"
    )
    total = summary.written + summary.holdout_written
    if total < MINIMUM_EXAMPLES:
        print(
            f"note: {total} examples is below the {MINIMUM_EXAMPLES} a fine-tune needs at "
            "minimum (ideally 500+)"
        )
    return 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def add_cli(subparsers: Any) -> None:
    """``promptgate export-finetune SUITE -o data.jsonl [--holdout 0.2] [--seed 0]``."""
    parser = subparsers.add_parser(
        "export-finetune", help="export labelled cases as OpenAI chat-format JSONL"
    )
    parser.add_argument("suite", help="a *.promptgate.yaml suite")
    parser.add_argument("-o", "--output", required=True, help="JSONL file to write")
    parser.add_argument(
        "--holdout",
        type=_fraction,
        default=0.0,
        help="fraction of examples held out in <output stem>.holdout.jsonl (default 0)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the hold-out split")
    parser.set_defaults(func=_run_export_command)

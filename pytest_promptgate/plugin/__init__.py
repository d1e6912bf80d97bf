"""pytest hooks and options: thin glue over the engine.

Loaded for every pytest run through the ``pytest11`` entry point, so it imports nothing
heavy: the engine (and litellm, lazily, inside the client) is loaded only once a suite file
is collected.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pytest_promptgate.model import SUITE_SUFFIXES
from pytest_promptgate.plugin.state import STATE, STATUS_PROPERTY, USER_PROPERTY, Options, State

CACHE_MODES = ("off", "read", "write", "readwrite")
GATE_MODES = ("point", "lower", "upper")
FINETUNE_MODES = ("fail", "flag")


# -- option parsing at the boundary ----------------------------------------------------------
def _threshold(text: str) -> float:
    try:
        value = float(str(text).strip().rstrip("%")) / (
            100 if str(text).strip().endswith("%") else 1
        )
    except ValueError:
        raise pytest.UsageError(
            f"--promptgate-threshold: expected a number between 0 and 1 (e.g. 0.8), got {text!r}"
        )
    if not (0.0 < value <= 1.0) or math.isnan(value):
        hint = f" (did you mean {value / 100:g}?)" if 1 < value <= 100 else ""
        raise pytest.UsageError(
            f"--promptgate-threshold: expected a number in (0, 1], got {text!r}{hint}"
        )
    return value


def _positive_int(name: str, minimum: int = 1):
    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise pytest.UsageError(f"--promptgate-{name}: expected a whole number, got {text!r}")
        if value < minimum:
            raise pytest.UsageError(
                f"--promptgate-{name}: expected at least {minimum}, got {value}"
            )
        return value

    return parse


def _positive_float(name: str):
    def parse(text: str) -> float:
        try:
            value = float(str(text).strip().lstrip("$"))
        except ValueError:
            raise pytest.UsageError(f"--promptgate-{name}: expected a number, got {text!r}")
        if not value > 0 or math.isinf(value):
            raise pytest.UsageError(
                f"--promptgate-{name}: expected a positive number, got {text!r}"
            )
        return value

    return parse


def _choice(name: str, choices: tuple[str, ...]):
    def parse(text: str) -> str:
        value = str(text).strip().lower()
        if value not in choices:
            raise pytest.UsageError(
                f"--promptgate-{name}: expected one of {', '.join(choices)}, got {text!r}"
            )
        return value

    return parse


def _workers(text: str) -> int | None:
    value = str(text).strip().lower()
    if value == "auto":
        return None
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise pytest.UsageError(
            f"--promptgate-workers: expected auto or a whole number >= 0, got {text!r}"
        )
    return count


def _shard(text: str) -> tuple[int, int]:
    try:
        index, total = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise pytest.UsageError(f"--promptgate-shard: expected I/N such as 1/4, got {text!r}")
    if not (total >= 1 and 1 <= index <= total):
        raise pytest.UsageError(f"--promptgate-shard: expected 1 <= I <= N, got {text!r}")
    return index, total


# name, type parser (None: string), ini type, help
_OPTIONS = [
    (
        "model",
        None,
        "string",
        "model for every suite (any litellm model string), overriding the suites' `model:`; the ini value is only a default",
    ),
    (
        "threshold",
        _threshold,
        "string",
        "success-rate threshold in (0, 1], overriding the suites' `threshold:` (default 0.8)",
    ),
    (
        "concurrency",
        _positive_int("concurrency"),
        "string",
        "model calls in flight at once (default 8)",
    ),
    (
        "retries",
        _positive_int("retries", 0),
        "string",
        "retries of a transient provider failure (default 3)",
    ),
    (
        "timeout",
        _positive_float("timeout"),
        "string",
        "seconds before one model call times out (default 60)",
    ),
    ("report", None, "string", "write the JSON report to this path"),
    (
        "markdown",
        None,
        "string",
        "write the Markdown report (PR comment / job summary) to this path",
    ),
    ("html", None, "string", "write a self-contained HTML report to this path"),
    ("baseline", None, "string", "compare with a baseline JSON report (e.g. the base branch's)"),
    (
        "history",
        None,
        "string",
        "history file (default .promptgate/history.jsonl under the rootdir)",
    ),
    (
        "gate",
        _choice("gate", GATE_MODES),
        "string",
        "gate on the point estimate, the interval's lower bound, or its upper bound (default point)",
    ),
    (
        "finetune",
        _choice("finetune", FINETUNE_MODES),
        "string",
        "`flag` keeps a CONSIDER FINE-TUNING verdict but exits 0 for it (default fail)",
    ),
    (
        "finetune-after",
        _positive_int("finetune-after", 2),
        "string",
        "iterations below threshold before advising fine-tuning (default 3)",
    ),
    (
        "cache",
        _choice("cache", CACHE_MODES),
        "string",
        "response cache mode: off, read, write, readwrite (default readwrite)",
    ),
    (
        "cache-dir",
        None,
        "string",
        "response cache directory (default .promptgate/cache under the rootdir)",
    ),
    (
        "max-cost",
        _positive_float("max-cost"),
        "string",
        "refuse to start above this estimated spend in USD, and stop when it is spent",
    ),
    ("shard", _shard, "string", "run only shard I of N (cases are split by case id), e.g. 2/4"),
    (
        "judge-model",
        None,
        "string",
        "model for llm-rubric expectations (default: the case's model)",
    ),
    (
        "rpm",
        _positive_float("rpm"),
        "string",
        "requests per minute per model, for suites that set no `rpm:`",
    ),
    (
        "workers",
        _workers,
        "string",
        "processes that make the model calls: auto (one per 8 of concurrency, up to one per CPU and 4, when the concurrency is 12+ and 200+ calls are uncached), or a number; 0: the pytest process calls (default auto)",
    ),
]
_FLAGS = [
    ("strict", "every failing case fails the run, even when its version clears the threshold"),
    ("no-history", "do not read or append the history file"),
    (
        "replay",
        "replay recorded responses only: a cache miss is an error (CI without keys, fork PRs)",
    ),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("promptgate", "pytest-promptgate: gate on LLM prompt quality")
    for name, parse, ini_type, help_text in _OPTIONS:
        dest = "promptgate_" + name.replace("-", "_")
        group.addoption(f"--promptgate-{name}", dest=dest, default=None, type=parse, help=help_text)
        parser.addini(dest, help_text, type=ini_type, default=None)
    for name, help_text in _FLAGS:
        dest = "promptgate_" + name.replace("-", "_")
        group.addoption(
            f"--promptgate-{name}", dest=dest, action="store_true", default=None, help=help_text
        )
        parser.addini(dest, help_text, type="bool", default=None)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_promptgate import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def _resolve(config: pytest.Config, name: str, parse=None):
    """CLI value, else the ini value (parsed the same way), else None."""
    dest = "promptgate_" + name.replace("-", "_")
    value = config.getoption(dest)
    if value is not None:
        return value, "cli"
    ini = config.getini(dest)
    if ini in (None, "", []):
        return None, None
    if parse is not None and not isinstance(ini, bool):
        try:
            return parse(ini), "ini"
        except pytest.UsageError as exc:
            raise pytest.UsageError(f"{exc} (from the ini option {dest})") from None
    return ini, "ini"


def _read_options(config: pytest.Config) -> Options:
    parsers = {name: parse for name, parse, _, _ in _OPTIONS}
    values: dict[str, tuple[object, str | None]] = {
        name: _resolve(config, name, parsers[name]) for name in parsers
    }
    flags = {name: bool(_resolve(config, name)[0]) for name, _ in _FLAGS}
    root = config.rootpath

    def value(name, default=None):
        got = values[name][0]
        return default if got is None else got

    def path(name, default=None):
        got = values[name][0]
        if got is None:
            return default
        candidate = Path(str(got)).expanduser()
        return candidate if candidate.is_absolute() else (config.invocation_params.dir / candidate)

    model, model_source = values["model"]
    threshold, threshold_source = values["threshold"]
    finetune_after, finetune_after_source = values["finetune-after"]
    return Options(
        model=model if model_source == "cli" else None,
        model_default=model if model_source == "ini" else None,
        threshold=threshold if threshold_source == "cli" else None,
        threshold_default=threshold if threshold_source == "ini" else 0.8,
        concurrency=value("concurrency", 8),
        retries=value("retries", 3),
        timeout_s=value("timeout", 60.0),
        strict=flags["strict"],
        report=path("report"),
        markdown=path("markdown"),
        html=path("html"),
        baseline=path("baseline"),
        history=None
        if flags["no-history"]
        else path("history", root / ".promptgate" / "history.jsonl"),
        gate=value("gate", "point"),
        finetune=value("finetune", "fail"),
        finetune_after=finetune_after if finetune_after_source == "cli" else None,
        finetune_after_default=finetune_after if finetune_after_source == "ini" else 3,
        cache="read" if flags["replay"] else value("cache", "readwrite"),
        cache_dir=path("cache-dir", root / ".promptgate" / "cache"),
        replay=flags["replay"],
        max_cost_usd=value("max-cost"),
        shard=value("shard"),
        judge_model=value("judge-model"),
        rpm=value("rpm"),
        workers=values["workers"][0],  # None: auto
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "promptgate: a case of a prompt suite (pytest-promptgate)")
    config.stash[STATE] = State(options=_read_options(config), rootdir=config.rootpath)
    config.pluginmanager.register(_ReportListener(config), "promptgate-reports")
    if config.pluginmanager.hasplugin("xdist"):
        from pytest_promptgate.plugin.xdist import XdistHooks

        config.pluginmanager.register(XdistHooks(config), "promptgate-xdist")


def pytest_collect_file(parent: pytest.Collector, file_path: Path):
    if file_path.name.endswith(SUITE_SUFFIXES):
        from pytest_promptgate.plugin.collect import PromptFile

        return PromptFile.from_parent(parent, path=file_path)
    return None


def pytest_report_header(config: pytest.Config) -> list[str]:
    options = config.stash[STATE].options
    model = options.model or options.model_default or "per suite"
    threshold = (
        f"{options.threshold:g}"
        if options.threshold is not None
        else f"per suite (default {options.threshold_default:g})"
    )
    cache = "replay" if options.replay else options.cache
    return [
        f"promptgate: model {model}, threshold {threshold}, gate {options.gate}, concurrency {options.concurrency}, "
        f"retries {options.retries}, cache {cache}"
    ]


def pytest_report_collectionfinish(config: pytest.Config, items) -> list[str]:
    state = config.stash[STATE]
    if not state.suites:
        return []
    from pytest_promptgate.plugin.session import collection_summary

    return collection_summary(state, items)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list
) -> None:
    state = config.stash[STATE]
    if not state.suites:
        return
    from pytest_promptgate.plugin.session import apply_shard

    apply_shard(config, items)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session):
    state = session.config.stash[STATE]
    config = session.config
    # pytest runs nothing after collection errors (unless --continue-on-collection-errors).
    refused = session.testsfailed and not config.option.continue_on_collection_errors
    if (
        state.suites
        and not refused
        and not config.option.collectonly
        and not config.pluginmanager.has_plugin("dsession")
        and not hasattr(config, "workerinput")
    ):
        from pytest_promptgate.plugin.session import run_all

        run_all(session)  # starts the calls; the items below report as their results arrive
    if state.stream is None:
        return (yield)
    from pytest_promptgate.plugin.session import end_stream

    try:
        result = yield
    except BaseException as exc:
        end_stream(session, interrupted=isinstance(exc, KeyboardInterrupt))
        raise
    end_stream(session, interrupted=False)
    return result


class _ReportListener:
    """Collects the case payloads that items attach to their reports (serial or xdist)."""

    def __init__(self, config: pytest.Config):
        self.state = config.stash[STATE]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == USER_PROPERTY:
                from pytest_promptgate.plugin.session import record_payload

                record_payload(self.state, report, value)
                return


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    if report.when != "call" or not report.passed:
        return None
    for name, value in report.user_properties:
        if name == STATUS_PROPERTY:
            if value == "tolerated":
                return "tolerated", "t", ("TOLERATED", {"yellow": True})
            return "miss", "m", ("MISS", {"yellow": True})
    return None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return
    state = session.config.stash[STATE]
    if not state.suites and not state.reported:
        return
    from pytest_promptgate.plugin.session import finish

    finish(session)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    state = config.stash[STATE]
    if state.report is None and not state.warnings:
        return
    from pytest_promptgate.plugin.session import terminal_summary

    terminal_summary(terminalreporter, state)

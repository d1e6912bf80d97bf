"""Every promptgate option, defined once: name, parser, choices, default, help, ini twin.

The pytest plugin builds ``--promptgate-<name>`` and its ini twin ``promptgate_<name>`` from
``OPTIONS``; ``resolve`` turns the given values into the ``Options`` the run uses; the engine
imports its defaults and mode names from here. No pytest import: a bad value raises
``OptionError`` (a ValueError) and the plugin turns it into ``pytest.UsageError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_MODES = ("off", "read", "write", "readwrite")
GATE_MODES = ("point", "lower", "upper")
FINETUNE_MODES = ("fail", "flag")

DEFAULT_THRESHOLD = 0.8
DEFAULT_CONCURRENCY = 8
DEFAULT_RETRIES = 3
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_FINETUNE_AFTER = 3
DEFAULT_PLATEAU_MARGIN = 0.15  # the gain (15 points) below which a window is a plateau
DEFAULT_GATE = "point"
DEFAULT_FINETUNE = "fail"
DEFAULT_CACHE = "readwrite"
DEFAULT_HISTORY = Path(".promptgate") / "history.jsonl"  # under the rootdir
DEFAULT_CACHE_DIR = Path(".promptgate") / "cache"  # under the rootdir


class OptionError(ValueError):
    """A bad option value; the message says what was expected and what was found."""


# -- parsers: text (command line or ini) -> value ---------------------------------------------
def parse_threshold(text: str) -> float:
    raw = str(text).strip()
    try:
        value = float(raw.rstrip("%")) / (100 if raw.endswith("%") else 1)
    except ValueError:
        raise OptionError(f"expected a number between 0 and 1 (e.g. 0.8), got {text!r}")
    if not (0.0 < value <= 1.0) or math.isnan(value):
        hint = f" (did you mean {value / 100:g}?)" if 1 < value <= 100 else ""
        raise OptionError(f"expected a number in (0, 1], got {text!r}{hint}")
    return value


def whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise OptionError(f"expected a whole number, got {text!r}")
        if value < minimum:
            raise OptionError(f"expected at least {minimum}, got {value}")
        return value

    return parse


def parse_positive(text: str) -> float:
    try:
        value = float(str(text).strip().lstrip("$"))
    except ValueError:
        raise OptionError(f"expected a number, got {text!r}")
    if not value > 0 or math.isinf(value):
        raise OptionError(f"expected a positive number, got {text!r}")
    return value


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = str(text).strip().lower()
        if value not in choices:
            raise OptionError(f"expected one of {', '.join(choices)}, got {text!r}")
        return value

    return parse


def parse_workers(text: str) -> int | None:
    """``auto`` (None) or a whole number >= 0."""
    value = str(text).strip().lower()
    if value == "auto":
        return None
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise OptionError(f"expected auto or a whole number >= 0, got {text!r}")
    return count


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, total = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise OptionError(f"expected I/N such as 1/4, got {text!r}")
    if not (total >= 1 and 1 <= index <= total):
        raise OptionError(f"expected 1 <= I <= N, got {text!r}")
    return index, total


# -- the options ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    """One option: ``--promptgate-<name>`` on the command line, ``promptgate_<name>`` in the ini."""

    name: str
    help: str
    parse: Callable[[str], Any] | None = None  # None: the text as it is
    flag: bool = False  # a switch (store_true / ini bool)
    choices: tuple[str, ...] = ()

    @property
    def dest(self) -> str:
        return "promptgate_" + self.name.replace("-", "_")

    @property
    def flag_name(self) -> str:
        return "--promptgate-" + self.name


OPTIONS: tuple[Option, ...] = (
    Option(
        "model",
        "model for every suite (any litellm model string), overriding the suites' `model:`; "
        "the ini value is only a default",
    ),
    Option(
        "threshold",
        "success-rate threshold in (0, 1], overriding the suites' `threshold:` "
        f"(default {DEFAULT_THRESHOLD:g})",
        parse_threshold,
    ),
    Option(
        "concurrency",
        f"model calls in flight at once (default {DEFAULT_CONCURRENCY})",
        whole_number(1),
    ),
    Option(
        "retries",
        f"retries of a transient provider failure (default {DEFAULT_RETRIES})",
        whole_number(0),
    ),
    Option(
        "timeout",
        f"seconds before one model call times out (default {DEFAULT_TIMEOUT_S:g})",
        parse_positive,
    ),
    Option("report", "write the JSON report to this path"),
    Option("markdown", "write the Markdown report (PR comment / job summary) to this path"),
    Option("html", "write a self-contained HTML report to this path"),
    Option("baseline", "compare with a baseline JSON report (e.g. the base branch's)"),
    Option("history", f"history file (default {DEFAULT_HISTORY.as_posix()} under the rootdir)"),
    Option(
        "gate",
        "gate on the point estimate, the interval's lower bound, or its upper bound "
        f"(default {DEFAULT_GATE})",
        one_of(GATE_MODES),
        choices=GATE_MODES,
    ),
    Option(
        "finetune",
        "`flag` keeps a CONSIDER FINE-TUNING verdict but exits 0 for it "
        f"(default {DEFAULT_FINETUNE})",
        one_of(FINETUNE_MODES),
        choices=FINETUNE_MODES,
    ),
    Option(
        "finetune-after",
        f"iterations below threshold before advising fine-tuning (default {DEFAULT_FINETUNE_AFTER})",
        whole_number(2),
    ),
    Option(
        "plateau-margin",
        "smallest gain over the window that still counts as progress, overriding the suites' "
        "`plateau_margin:`; fine-tuning is advised only when the data shows every gain is "
        f"below it (default {DEFAULT_PLATEAU_MARGIN:g}, i.e. 15 points)",
        parse_threshold,
    ),
    Option(
        "cache",
        f"response cache mode: {', '.join(CACHE_MODES)} (default {DEFAULT_CACHE})",
        one_of(CACHE_MODES),
        choices=CACHE_MODES,
    ),
    Option(
        "cache-dir",
        f"response cache directory (default {DEFAULT_CACHE_DIR.as_posix()} under the rootdir)",
    ),
    Option(
        "max-cost",
        "refuse to start above this estimated spend in USD, and stop when it is spent",
        parse_positive,
    ),
    Option("shard", "run only shard I of N (cases are split by case id), e.g. 2/4", parse_shard),
    Option("judge-model", "model for llm-rubric expectations (default: the case's model)"),
    Option("rpm", "requests per minute per model, for suites that set no `rpm:`", parse_positive),
    Option(
        "workers",
        "processes that make the model calls: auto (none below concurrency 48; above, one per "
        "32 calls in flight, up to one per CPU and 4, when 200+ calls are uncached: only "
        "sub-second replies at that concurrency outrun one process's ~250 calls/s), or a "
        "number; 0: the pytest process calls (default auto)",
        parse_workers,
    ),
    Option(
        "strict",
        "every failing case fails the run, even when its version clears the threshold",
        flag=True,
    ),
    Option("no-history", "do not read or append the history file", flag=True),
    Option(
        "replay",
        "replay recorded responses only: a cache miss is an error (CI without keys, fork PRs)",
        flag=True,
    ),
)
OPTIONS_BY_NAME: Mapping[str, Option] = {option.name: option for option in OPTIONS}


@dataclass(frozen=True)
class Options:
    """Resolved promptgate options. ``None`` means "not given": the suite or a default decides."""

    model: str | None = None  # CLI: overrides every suite's model
    model_default: str | None = None  # ini: used by suites without `model:`
    threshold: float | None = None  # CLI: overrides the suites
    threshold_default: float = DEFAULT_THRESHOLD  # ini or the default
    concurrency: int = DEFAULT_CONCURRENCY
    retries: int = DEFAULT_RETRIES
    timeout_s: float = DEFAULT_TIMEOUT_S
    strict: bool = False
    report: Path | None = None
    markdown: Path | None = None
    html: Path | None = None
    baseline: Path | None = None
    history: Path | None = None  # None: history disabled
    gate: str = DEFAULT_GATE
    finetune: str = DEFAULT_FINETUNE
    finetune_after: int | None = None  # CLI override
    finetune_after_default: int = DEFAULT_FINETUNE_AFTER
    plateau_margin: float | None = None  # CLI override
    plateau_margin_default: float = DEFAULT_PLATEAU_MARGIN  # ini or the default
    cache: str = DEFAULT_CACHE
    cache_dir: Path | None = None
    replay: bool = False
    max_cost_usd: float | None = None
    shard: tuple[int, int] | None = None  # (index 1-based, total)
    judge_model: str | None = None
    rpm: float | None = None  # requests per minute for models whose suite sets no `rpm:`
    workers: int | None = None  # call worker processes; None: auto (callpool.auto_workers)


def parse_value(option: Option, text: Any) -> Any:
    """An ini (or any textual) value parsed like the command line parses it."""
    if option.flag:
        if isinstance(text, bool):
            return text
        return str(text).strip().lower() in ("1", "true", "yes", "on")
    return text if option.parse is None else option.parse(text)


def resolve(
    given: Mapping[str, tuple[Any, str]], rootdir: Path, cwd: Path | None = None
) -> Options:
    """``Options`` from the values given, ``{name: (parsed value, "cli" | "ini")}``; an absent
    name takes its default. Relative paths are relative to ``cwd`` (default: the rootdir); the
    history and cache default under the rootdir."""
    base = cwd if cwd is not None else rootdir

    def value(name: str, default: Any = None) -> Any:
        got = given.get(name, (None, ""))[0]
        return default if got is None else got

    def source(name: str) -> str | None:
        got = given.get(name)
        return None if got is None or got[0] is None else got[1]

    def path(name: str, default: Path | None = None) -> Path | None:
        got = value(name)
        if got is None:
            return default
        candidate = Path(str(got)).expanduser()
        return candidate if candidate.is_absolute() else base / candidate

    def split(name: str, default: Any) -> tuple[Any, Any]:
        """(the CLI override or None, the ini value or ``default``)."""
        got = value(name)
        return (got, default) if source(name) == "cli" else (None, default if got is None else got)

    model, model_default = split("model", None)
    threshold, threshold_default = split("threshold", DEFAULT_THRESHOLD)
    finetune_after, finetune_after_default = split("finetune-after", DEFAULT_FINETUNE_AFTER)
    plateau_margin, plateau_margin_default = split("plateau-margin", DEFAULT_PLATEAU_MARGIN)
    replay = bool(value("replay", False))
    return Options(
        model=model,
        model_default=model_default,
        threshold=threshold,
        threshold_default=threshold_default,
        concurrency=value("concurrency", DEFAULT_CONCURRENCY),
        retries=value("retries", DEFAULT_RETRIES),
        timeout_s=value("timeout", DEFAULT_TIMEOUT_S),
        strict=bool(value("strict", False)),
        report=path("report"),
        markdown=path("markdown"),
        html=path("html"),
        baseline=path("baseline"),
        history=None if value("no-history", False) else path("history", rootdir / DEFAULT_HISTORY),
        gate=value("gate", DEFAULT_GATE),
        finetune=value("finetune", DEFAULT_FINETUNE),
        finetune_after=finetune_after,
        finetune_after_default=finetune_after_default,
        plateau_margin=plateau_margin,
        plateau_margin_default=plateau_margin_default,
        cache="read" if replay else value("cache", DEFAULT_CACHE),
        cache_dir=path("cache-dir", rootdir / DEFAULT_CACHE_DIR),
        replay=replay,
        max_cost_usd=value("max-cost"),
        shard=value("shard"),
        judge_model=value("judge-model"),
        rpm=value("rpm"),
        workers=value("workers"),  # None: auto
    )

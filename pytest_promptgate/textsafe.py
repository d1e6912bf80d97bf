"""Text safety: the one home of clipping, escaping, percent and path formatting.

Model output is written by whoever controls the model's input, so it is treated like user input
on a web page: it must not close our HTML, run script, ping people with @mentions, inject GitHub
workflow commands into the Actions log, drive the terminal with escape sequences, or blow up a
PR comment past GitHub's size limit. Every renderer (terminal, Markdown, HTML, GitHub, error
messages) goes through these helpers instead of its own variant.

Which helper for which place:

- terminal line: ``printable`` (escapes controls as ``\\xNN``), ``one_line`` for table cells;
- Markdown prose or table cell: ``md_text``; Markdown code block: ``fence``;
- HTML: the Jinja2 template autoescapes; ``clean`` first removes controls, mentions, workflow
  commands and cuts long text; ``html_text`` for HTML built outside a template;
- JSON inside ``<script>``: Jinja2's ``tojson`` filter (escapes ``<``, ``>``, ``&``, ``'``);
- GitHub workflow commands: ``workflow_data`` / ``workflow_property``;
- a short quote in an error message: ``clip``; a long block that says how much was cut:
  ``truncate``;
- a rate: ``pct``; a file named in a report or message: ``relpath``.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

ZERO_WIDTH_SPACE = "\u200b"
ELLIPSIS = "…"

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and two-character ESC sequences.
_ANSI_RE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# C0 controls except tab and newline, DEL and the C1 range; NUL included.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# An @ that GitHub would turn into a mention or team ping: @user, @org/team, @everyone.
_MENTION_RE = re.compile(r"@(?=[A-Za-z0-9_-])")
# The start of an HTML tag, comment or declaration.
_TAG_START_RE = re.compile(r"<(?=[A-Za-z/!?])")
# A line that GitHub's runner would read as a workflow command (`::error::`, `::set-output`).
_WORKFLOW_COMMAND_LINE_RE = re.compile(r"^(\s*)::", re.MULTILINE)
# Anything ``clean`` would change: a control character (CR included), an @, or a ``::``.
_NEEDS_CLEANING_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f@]|::")
# The note ``truncate`` appends; recognised so that cutting twice does not miscount.
# (" cut": the note plugin/collect.py wrote before it used ``truncate``.)
_CUT_NOTE_RE = re.compile(r"\n?… \([\d,]+ more characters(?: cut)?\)")


# ----------------------------------------------------------------------------- clipping


def clip(text: object, limit: int) -> str:
    """At most ``limit`` characters, the last one ``…`` when something was cut (short quotes)."""
    value = "" if text is None else str(text)
    if limit < 1 or len(value) <= limit:
        return value
    return value[: limit - 1] + ELLIPSIS


def truncate(text: str, limit: int, *, newline: bool = False) -> str:
    """Cut ``text`` to ``limit`` characters and say how much was left out.

    ``newline=True`` puts the note on a line of its own (for multi-line blocks). Cutting an
    already cut text again at the same limit returns it unchanged, so a text cut on an xdist
    worker keeps its true count when the controller's report cuts it again.
    """
    if limit < 0 or len(text) <= limit or _CUT_NOTE_RE.fullmatch(text, limit):
        return text
    note = f"… ({len(text) - limit:,} more characters)"
    return text[:limit] + ("\n" if newline else "") + note


def one_line(text: object, limit: int = 90) -> str:
    """Terminal-safe, on one line, at most ``limit`` characters (a table cell)."""
    return clip(printable(text).replace("\n", " ").replace("\t", " "), limit)


# ----------------------------------------------------------------------------- cleaning


def printable(text: object) -> str:
    """Terminal-safe text: ANSI escapes and control characters from untrusted model output are
    shown as ``\\xNN`` instead of acting on the terminal; newline and tab are kept."""
    value = str(text)
    if not _CONTROL_RE.search(value):
        return value
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group(0)):02x}", value)


def strip_control(text: object) -> str:
    """Remove ANSI escape sequences and control characters (keeps newline and tab)."""
    value = "" if text is None else str(text)
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _ANSI_RE.sub("", value)
    return _CONTROL_RE.sub("", value)


def neutralize_mentions(text: str) -> str:
    """``@everyone`` -> ``@\u200beveryone``: reads the same, notifies nobody."""
    return _MENTION_RE.sub("@" + ZERO_WIDTH_SPACE, text)


def neutralize_workflow_commands(text: str) -> str:
    """Break any line that starts with ``::`` so the Actions runner never parses it as a command."""
    return _WORKFLOW_COMMAND_LINE_RE.sub(lambda m: m.group(1) + ZERO_WIDTH_SPACE + "::", text)


def clean(text: object, limit: int = -1) -> str:
    """Control characters stripped, mentions and workflow commands neutralized, then truncated."""
    raw = "" if text is None else str(text)
    if (limit < 0 or len(raw) <= limit) and not _NEEDS_CLEANING_RE.search(raw):
        return raw  # the common case: a report prints thousands of short, plain values
    unseen = 0
    if 0 <= limit and len(raw) > 2 * limit + 4096:
        # Clean only what can be shown (plus slack for escape sequences that get removed):
        # a 1 MB output must not cost a regex pass per render.
        unseen = len(raw) - (2 * limit + 4096)
        raw = raw[: 2 * limit + 4096]
    value = strip_control(raw)
    if limit >= 0 and len(value) + unseen > limit:
        value = f"{value[:limit]}… ({len(value) - limit + unseen:,} more characters)"
    return neutralize_workflow_commands(neutralize_mentions(value))


# ----------------------------------------------------------------------------- escaping


def md_text(text: object, limit: int = -1) -> str:
    """Untrusted text for Markdown prose or a table cell: one line, no HTML, no table breaks."""
    value = clean(text, limit)
    value = html.escape(value, quote=False)
    # Characters that would otherwise start Markdown syntax inside a line of prose.
    value = value.replace("|", "\\|").replace("`", "\\`").replace("*", "\\*").replace("_", "\\_")
    value = value.replace("[", "\\[").replace("]", "\\]")
    return " ".join(value.split())


def fence(text: object, info: str = "", limit: int = -1) -> str:
    """Untrusted text as a fenced code block that its content cannot close.

    The fence is one backtick longer than the longest run of backticks inside, so neither a
    stray ``` nor ``</details>`` (which is code inside a fence) can change the structure.
    """
    # Tags inside a fence are inert on GitHub; the zero-width space also keeps them inert for
    # renderers that ignore fences (mail notifications, a document cut mid-fence by someone else).
    value = _TAG_START_RE.sub("<" + ZERO_WIDTH_SPACE, clean(text, limit))
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    marker = "`" * max(3, longest + 1)
    return f"{marker}{info}\n{value}\n{marker}"


def html_text(text: object, limit: int = -1) -> str:
    """Untrusted text for HTML element content or attribute values."""
    return html.escape(clean(text, limit), quote=True)


def workflow_data(text: object) -> str:
    """Escape a workflow command's message the way the Actions runner unescapes it."""
    value = strip_control(text)
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: object) -> str:
    """Escape a workflow command property value (``file=``, ``title=``): also ``:`` and ``,``."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")


# ----------------------------------------------------------------------------- numbers, paths


def pct(value: float | None, digits: int = 1, *, missing: str = "n/a") -> str:
    """A rate as a percentage: ``pct(0.705) == "70.5%"``, ``pct(0.7) == "70%"`` (no trailing
    zeros), ``pct(0.705, digits=0) == "70%"``; ``missing`` when there is no rate.

    Rounding is Python's own (``format``), as the reports always printed: 25/40 shows as 62% in
    the terminal's whole percents and 62.5% elsewhere.
    """
    if value is None:
        return missing
    text = f"{value * 100:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "%"


def relpath(path: str | os.PathLike[str], root: str | os.PathLike[str] | None) -> str:
    """``path`` relative to ``root`` in POSIX form, or ``path`` as given when it lies outside.

    Tried first as written (made absolute, ``..`` folded), so a suite reached through a symlinked
    folder inside the root keeps its in-repo name; then with symlinks resolved, so a root given
    through a symlink (``/tmp`` vs ``/private/tmp``) still matches.
    """
    given = Path(path)
    if root is None:
        return given.as_posix()
    for resolve in (False, True):
        try:
            target = given.resolve() if resolve else Path(os.path.abspath(given))
            base = Path(root).resolve() if resolve else Path(os.path.abspath(root))
            return target.relative_to(base).as_posix()
        except (ValueError, OSError):
            continue
    return given.as_posix()

"""Escaping of untrusted text (model output, case vars, expectation reasons) for every report.

Model output is written by whoever controls the model's input, so it is treated like user input
on a web page: it must not close our HTML, run script, ping people with @mentions, inject GitHub
workflow commands into the Actions log, or blow up a PR comment past GitHub's size limit.
Every renderer (Markdown, HTML, GitHub) goes through these helpers instead of its own variant.
"""

from __future__ import annotations

import html
import re

ZERO_WIDTH_SPACE = "\u200b"

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


def strip_control(text: object) -> str:
    """Remove ANSI escape sequences and control characters (keeps newline and tab)."""
    value = "" if text is None else str(text)
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _ANSI_RE.sub("", value)
    return _CONTROL_RE.sub("", value)


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters and say how much was left out."""
    if limit < 0 or len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def neutralize_mentions(text: str) -> str:
    """``@everyone`` -> ``@\u200beveryone``: reads the same, notifies nobody."""
    return _MENTION_RE.sub("@" + ZERO_WIDTH_SPACE, text)


def neutralize_workflow_commands(text: str) -> str:
    """Break any line that starts with ``::`` so the Actions runner never parses it as a command."""
    return _WORKFLOW_COMMAND_LINE_RE.sub(lambda m: m.group(1) + ZERO_WIDTH_SPACE + "::", text)


def clean(text: object, limit: int = -1) -> str:
    """Control characters stripped, mentions and workflow commands neutralized, then truncated."""
    raw = "" if text is None else str(text)
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


def json_for_script(text: str) -> str:
    """JSON text made safe inside <script>: ``</script>`` and ``<!--`` cannot appear."""
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def workflow_data(text: object) -> str:
    """Escape a workflow command's message the way the Actions runner unescapes it."""
    value = strip_control(text)
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: object) -> str:
    """Escape a workflow command property value (``file=``, ``title=``): also ``:`` and ``,``."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")

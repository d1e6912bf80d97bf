"""``promptgate github``: the sticky PR comment, fine-tune candidate issues, annotations, outputs.

Speaks the GitHub REST API with urllib only (no client library to install in the action's venv)
and honours ``GITHUB_API_URL`` so GitHub Enterprise works. Everything here is best effort for
the *gate*: a missing token, a read-only fork token or an API failure never changes the verdict;
we degrade to the job summary, print a ``::warning::`` and exit 0.

The token is sent only in the Authorization header, only to the API origin, and is redacted
from every message we print or raise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import posixpath
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_promptgate.model import (
    CONSIDER_FINE_TUNING,
    FAIL,
    FAILED,
    PASS,
    RETHINK,
    PromptgateError,
)
from pytest_promptgate.report.markdown import (
    GITHUB_COMMENT_LIMIT,
    REPORT_MARKER,
    advice_section,
    case_location,
    rate_chart,
    render_markdown,
    version_table,
)
from pytest_promptgate.textsafe import md_text, strip_control, workflow_data, workflow_property

DEFAULT_API_URL = "https://api.github.com"
BOT_LOGIN = "github-actions[bot]"
DEFAULT_LABEL = "fine-tune-candidate"
MAX_ANNOTATIONS = 10
_FAILING_VERDICTS = (FAIL, CONSIDER_FINE_TUNING, RETHINK)
_PERMISSION_STATUSES = (401, 403, 404)


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """urllib copies our headers (the token) onto redirects: follow same-origin ones only."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if (old.scheme, old.netloc) != (new.scheme, new.netloc):
            raise urllib.error.HTTPError(
                req.full_url, code, f"cross-origin redirect refused ({msg})", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameOriginRedirects)


class GitHubError(Exception):
    """A failed API call; the message never contains the token."""

    def __init__(self, status: int | None, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class GitHubClient:
    """Minimal REST client: JSON in and out, Link-header pagination, token kept out of messages."""

    api_url: str
    token: str = field(repr=False)
    timeout: float = 30.0

    def _redact(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text

    def _url(self, path_or_url: str, params: dict[str, Any] | None) -> str:
        if path_or_url.startswith(("http://", "https://")):
            url = path_or_url
            # Never follow a Link (or anything else) to another host with our token.
            base, target = urllib.parse.urlsplit(self.api_url), urllib.parse.urlsplit(url)
            if (base.scheme, base.netloc) != (target.scheme, target.netloc):
                raise GitHubError(
                    None, f"refusing to send the token to {target.scheme}://{target.netloc}"
                )
        else:
            url = self.api_url.rstrip("/") + path_or_url
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        return url

    def request(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> tuple[Any, Any]:
        url = self._url(path, params)
        # A model that echoed the token must not get it published in a comment or an issue.
        data = None if body is None else self._redact(json.dumps(body)).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("User-Agent", "pytest-promptgate")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        shown = urllib.parse.urlsplit(url).path
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                raw = response.read()
                headers = response.headers
        except urllib.error.HTTPError as exc:
            detail = ""
            try:
                detail = json.loads(exc.read() or b"{}").get("message", "")
            except (ValueError, AttributeError, OSError):
                pass
            raise GitHubError(
                exc.code, self._redact(f"{method} {shown}: HTTP {exc.code} {detail}".strip())
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GitHubError(None, self._redact(f"{method} {shown}: {reason}")) from None
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            raise GitHubError(None, f"{method} {shown}: the response is not JSON") from None
        return payload, headers

    def paginate(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict]:
        url: str | None = path
        query: dict[str, Any] | None = dict(params or {}, per_page=100)
        while url:
            items, headers = self.request("GET", url, params=query)
            query = None  # the next link carries the query string itself
            yield from items or []
            url = _next_link(headers.get("Link") if headers else None)


def _next_link(link_header: str | None) -> str | None:
    for part in (link_header or "").split(","):
        match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
        if match:
            return match.group(1)
    return None


# ----------------------------------------------------------------------------- context


@dataclass(frozen=True)
class Context:
    repository: str
    api_url: str
    token: str = field(repr=False)
    step_summary: str | None = None


def _context(args: argparse.Namespace) -> Context:
    repository = args.repo or os.environ.get("GITHUB_REPOSITORY", "")
    if repository and not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise PromptgateError(f"--repo must look like owner/name, got {repository!r}")
    return Context(
        repository=repository,
        api_url=(args.api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"),
        token=os.environ.get(args.token_env, "").strip(),
        step_summary=os.environ.get("GITHUB_STEP_SUMMARY") or None,
    )


def pr_number_from_event(event_path: str | None) -> int | None:
    """The PR number of a pull_request(_target) or PR issue_comment event, else None."""
    if not event_path:
        return None
    try:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(event, dict):
        return None
    if isinstance(event.get("pull_request"), dict) and event["pull_request"].get("number"):
        return int(event["pull_request"]["number"])
    issue = event.get("issue")
    if isinstance(issue, dict) and issue.get("pull_request") and issue.get("number"):
        return int(issue["number"])
    return None


def _warn(message: str, token: str = "") -> None:
    print(f"::warning title=promptgate::{workflow_data(_redact(message, token))}", flush=True)


def _append_summary(context: Context, text: str) -> None:
    if not context.step_summary:
        return
    with open(context.step_summary, "a", encoding="utf-8") as summary:
        summary.write(_redact(text, context.token).rstrip("\n") + "\n\n")


def _redact(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def token_login(client: GitHubClient) -> str:
    """Whose comments are ours: the token's user, or the Actions bot for installation tokens."""
    try:
        user, _ = client.request("GET", "/user")
    except GitHubError as exc:
        if exc.status in _PERMISSION_STATUSES:
            return BOT_LOGIN
        raise
    return (user or {}).get("login") or BOT_LOGIN


# ----------------------------------------------------------------------------- comment


def upsert_comment(client: GitHubClient, repository: str, pr: int, body: str) -> tuple[str, dict]:
    """PATCH our marked comment if the PR has one by us, else POST; returns (action, comment)."""
    author = token_login(client)
    for comment in client.paginate(f"/repos/{repository}/issues/{pr}/comments"):
        if (
            REPORT_MARKER in (comment.get("body") or "")
            and (comment.get("user") or {}).get("login") == author
        ):
            updated, _ = client.request(
                "PATCH", f"/repos/{repository}/issues/comments/{comment['id']}", {"body": body}
            )
            return "updated", updated or comment
    created, _ = client.request("POST", f"/repos/{repository}/issues/{pr}/comments", {"body": body})
    return "created", created or {}


def comment_body(report: dict, markdown_path: Path | None) -> str:
    body = None
    if markdown_path is not None:
        try:
            body = markdown_path.read_text(encoding="utf-8")
        except OSError:
            body = None
    if body is None or len(body) >= GITHUB_COMMENT_LIMIT:
        body = render_markdown(report)
    if REPORT_MARKER not in body:
        body = f"{REPORT_MARKER}\n{body}"
    return body


def run_comment(args: argparse.Namespace) -> int:
    report, context = _load(args)
    body = comment_body(report, args.markdown)
    pr = args.pr or pr_number_from_event(os.environ.get("GITHUB_EVENT_PATH"))
    if not pr:
        print(
            "promptgate: not a pull request (no --pr, no pull_request in GITHUB_EVENT_PATH): no comment posted"
        )
        return 0
    if not context.token:
        return _degrade_comment(
            context, body, f"no GitHub token in ${args.token_env}", args.summary_written
        )
    if not context.repository:
        return _degrade_comment(
            context, body, "no repository (set --repo or GITHUB_REPOSITORY)", args.summary_written
        )
    client = GitHubClient(context.api_url, context.token)
    try:
        action, comment = upsert_comment(client, context.repository, int(pr), body)
    except GitHubError as exc:
        if exc.status in _PERMISSION_STATUSES:
            reason = (
                f"the token cannot write to pull request #{pr} ({exc.message}); "
                "a pull request from a fork gets a read-only token"
            )
        else:
            reason = f"GitHub API error ({exc.message})"
        return _degrade_comment(context, body, reason, args.summary_written)
    print(
        _redact(
            f"promptgate: {action} the report comment on #{pr}: {comment.get('html_url', '')}".rstrip(
                ": "
            ),
            context.token,
        )
    )
    return 0


def _degrade_comment(context: Context, body: str, reason: str, summary_written: bool) -> int:
    if summary_written:
        _append_summary(
            context,
            f"> The promptgate PR comment was not posted: {md_text(reason)}. "
            "The report is in this job summary.",
        )
    else:
        _append_summary(context, body)
    where = (
        "the job summary"
        if context.step_summary
        else "the report files (no GITHUB_STEP_SUMMARY here)"
    )
    _warn(f"promptgate: PR comment not posted: {reason}. The report is in {where}.", context.token)
    return 0


# ----------------------------------------------------------------------------- issues


def _marker_key(prompt: object) -> str:
    # Encoded so a prompt name cannot end the HTML comment ("-->") or collide by whitespace.
    return urllib.parse.quote(str(prompt), safe="-_.~/:@")


def finetune_marker(prompt: object) -> str:
    return f"<!-- pytest-promptgate:finetune:{_marker_key(prompt)} -->"


def _state_marker(state: str) -> str:
    return f"<!-- pytest-promptgate:state:{state} -->"


def finetune_issue_title(prompt: dict) -> str:
    return f"Fine-tune candidate: {strip_control(prompt.get('prompt'))}"[:250]


def finetune_issue_body(report: dict, prompt: dict) -> str:
    name = md_text(prompt.get("prompt"))
    current = next((v for v in prompt.get("versions") or [] if v.get("current")), None)
    lines = [
        finetune_marker(prompt.get("prompt")),
        _state_marker("flagged"),
        f"## Fine-tune candidate: {name}",
        "",
        f"**Status: flagged** by the run of {md_text(report.get('created_at'))}: {md_text(prompt.get('reason'))}",
        "",
        "### Evidence",
        "",
        version_table(prompt),
        "",
    ]
    chart = rate_chart(prompt)
    if chart:
        lines += [chart, ""]
    advice = advice_section(prompt, heading="###")
    if advice:
        lines += [advice, ""]
    failing = [
        c
        for c in report.get("cases") or []
        if c.get("prompt") == prompt.get("prompt")
        and c.get("status") == FAILED
        and (current is None or c.get("version") == current.get("version"))
    ]
    if failing:
        lines += [
            f"### Failing cases of {md_text(current.get('version') if current else '')} ({len(failing)})",
            "",
        ]
        for case in failing[:30]:
            reasons = "; ".join(
                f"{f.get('expectation')}: {f.get('reason')}" for f in case.get("failures") or []
            )
            lines.append(
                f"- **{md_text(case.get('case'))}** ({md_text(case_location(case))}): "
                f"{md_text(reasons, 200)}"
            )
        if len(failing) > 30:
            lines.append(f"- … and {len(failing) - 30} more in the run's report")
        lines.append("")
    lines.append(
        "<sub>Kept up to date by pytest-promptgate on every run (found again by the hidden marker); "
        "never closed automatically.</sub>"
    )
    body = "\n".join(lines)
    return body if len(body) < GITHUB_COMMENT_LIMIT else body[: GITHUB_COMMENT_LIMIT - 1]


def recovered_comment(report: dict, prompt: dict) -> str:
    return (
        f"<!-- pytest-promptgate:recovered:{_marker_key(prompt.get('prompt'))} -->\n"
        f"**Recovered:** {md_text(prompt.get('prompt'))} passes again in the run of "
        f"{md_text(report.get('created_at'))}: {md_text(prompt.get('reason'))}\n\n"
        "This issue is left open: close it if fine-tuning is no longer needed."
    )


def ensure_label(client: GitHubClient, repository: str, label: str) -> bool:
    """Create the label if missing; returns True when it was created."""
    try:
        client.request("GET", f"/repos/{repository}/labels/{urllib.parse.quote(label, safe='')}")
        return False
    except GitHubError as exc:
        if exc.status != 404:
            raise
    try:
        client.request(
            "POST",
            f"/repos/{repository}/labels",
            {
                "name": label,
                "color": "d4c5f9",
                "description": "pytest-promptgate: prompt plateaued below its threshold",
            },
        )
    except GitHubError as exc:
        if exc.status != 422:  # 422: created meanwhile by a concurrent run
            raise
    return True


def find_finetune_issues(client: GitHubClient, repository: str, label: str) -> dict[str, dict]:
    """Open and closed issues with our label, by prompt marker (the oldest wins)."""
    found: dict[str, dict] = {}
    pattern = re.compile(r"<!-- pytest-promptgate:finetune:(\S+) -->")
    for issue in client.paginate(f"/repos/{repository}/issues", {"state": "all", "labels": label}):
        if issue.get("pull_request"):
            continue
        match = pattern.search(issue.get("body") or "")
        if match:
            existing = found.get(match.group(1))
            if existing is None or issue.get("number", 0) < existing.get("number", 0):
                found[match.group(1)] = issue
    return found


def sync_finetune_issues(
    client: GitHubClient, repository: str, report: dict, label: str
) -> list[str]:
    """Create/update one issue per flagged prompt; comment once when a flagged prompt recovers."""
    prompts = report.get("prompts") or []
    flagged = [p for p in prompts if p.get("verdict") == CONSIDER_FINE_TUNING]
    passing = [p for p in prompts if p.get("verdict") == PASS]
    if not flagged and not passing:
        return []
    actions: list[str] = []
    if flagged and ensure_label(client, repository, label):
        actions.append(f"created label {label}")
    existing = find_finetune_issues(client, repository, label)
    for prompt in flagged:
        issue = existing.get(_marker_key(prompt.get("prompt")))
        payload = {
            "title": finetune_issue_title(prompt),
            "body": finetune_issue_body(report, prompt),
        }
        if issue is None:
            created, _ = client.request(
                "POST", f"/repos/{repository}/issues", dict(payload, labels=[label])
            )
            actions.append(f"opened #{(created or {}).get('number')} for {prompt.get('prompt')}")
        else:
            client.request("PATCH", f"/repos/{repository}/issues/{issue['number']}", payload)
            actions.append(f"updated #{issue['number']} for {prompt.get('prompt')}")
    for prompt in passing:
        issue = existing.get(_marker_key(prompt.get("prompt")))
        body = (issue or {}).get("body") or ""
        if issue is None or _state_marker("recovered") in body:
            continue  # never flagged, or the recovery was already announced
        client.request(
            "POST",
            f"/repos/{repository}/issues/{issue['number']}/comments",
            {"body": recovered_comment(report, prompt)},
        )
        new_body = body.replace(_state_marker("flagged"), _state_marker("recovered"))
        if _state_marker("recovered") not in new_body:
            new_body = _state_marker("recovered") + "\n" + new_body
        status_line = (
            f"**Status: recovered** in the run of {md_text(report.get('created_at'))}: "
            f"{md_text(prompt.get('reason'))}"
        )
        new_body = re.sub(
            r"^\*\*Status: flagged\*\*.*$",
            lambda _, line=status_line: line,
            new_body,
            count=1,
            flags=re.MULTILINE,
        )
        client.request("PATCH", f"/repos/{repository}/issues/{issue['number']}", {"body": new_body})
        actions.append(f"commented on #{issue['number']}: {prompt.get('prompt')} recovered")
    return actions


def run_issues(args: argparse.Namespace) -> int:
    report, context = _load(args)
    flagged = [p for p in report.get("prompts") or [] if p.get("verdict") == CONSIDER_FINE_TUNING]
    if not context.token or not context.repository:
        missing = f"no GitHub token in ${args.token_env}" if not context.token else "no repository"
        if flagged:
            _append_summary(
                context, f"> promptgate could not open fine-tune issues: {md_text(missing)}."
            )
        _warn(f"promptgate: fine-tune issues not synced: {missing}", context.token)
        return 0
    client = GitHubClient(context.api_url, context.token)
    try:
        actions = sync_finetune_issues(client, context.repository, report, args.label)
    except GitHubError as exc:
        if flagged:
            _append_summary(
                context, f"> promptgate could not open fine-tune issues: {md_text(exc.message)}."
            )
        _warn(f"promptgate: fine-tune issues not synced: {exc.message}", context.token)
        return 0
    for action in actions:
        print(_redact(f"promptgate: {strip_control(action)}", context.token))
    return 0


# ----------------------------------------------------------------------------- annotate / outputs


def error_annotations(
    report: dict, path_prefix: str = "", limit: int = MAX_ANNOTATIONS
) -> list[str]:
    """``::error`` workflow commands for the first failing cases of failing prompts.

    Message and properties are escaped the way the runner unescapes them, so model text can
    neither end the command nor start a new line (and so never a new command).
    """
    failing_prompts = {
        p.get("prompt"): p
        for p in report.get("prompts") or []
        if p.get("verdict") in _FAILING_VERDICTS
    }
    lines = []
    candidates = [
        c
        for c in report.get("cases") or []
        if c.get("prompt") in failing_prompts
        and c.get("status") == FAILED
        and c.get("version")
        == failing_prompts[c.get("prompt")].get("current_version", c.get("version"))
    ]
    for case in candidates[:limit]:
        reasons = "; ".join(
            f"{f.get('expectation')}: {f.get('reason')}" for f in case.get("failures") or []
        )
        message = strip_control(f"case {case.get('case')} failed: {reasons or 'see the report'}")[
            :500
        ]
        title = f"promptgate: {case.get('prompt')} {case.get('version')}"
        props = []
        if case.get("file"):
            path = (
                posixpath.normpath(posixpath.join(path_prefix, case["file"]))
                if path_prefix
                else case["file"]
            )
            props.append(f"file={workflow_property(path)}")
            if case.get("line"):
                props.append(f"line={int(case['line'])}")
        props.append(f"title={workflow_property(title)}")
        lines.append(f"::error {','.join(props)}::{workflow_data(message)}")
    if len(candidates) > limit:
        lines.append(
            f"::notice title=promptgate::{len(candidates) - limit} more failing cases are in the job summary"
        )
    return lines


def run_annotate(args: argparse.Namespace) -> int:
    report = _load_report(args.report)
    token = os.environ.get("GITHUB_TOKEN", "").strip()
    for line in error_annotations(report, args.path_prefix or ""):
        print(_redact(line, token))
    return 0


def action_outputs(report: dict | None, report_path: str) -> dict[str, str]:
    if report is None:
        return {"verdict": "ERROR", "report-path": "", "failed-prompts": ""}
    failed = [
        re.sub(r"[\s,]+", "_", strip_control(p.get("prompt")))
        for p in report.get("prompts") or []
        if p.get("verdict") != PASS
    ]
    return {
        "verdict": strip_control(report.get("verdict")).replace("\n", " "),
        "report-path": report_path,
        "failed-prompts": ",".join(failed),
    }


def run_outputs(args: argparse.Namespace) -> int:
    try:
        report = _load_report(args.report)
    except PromptgateError as exc:
        _warn(f"promptgate: no report: {exc.message}")
        report = None
    outputs = action_outputs(report, str(Path(args.report).resolve()) if report is not None else "")
    target = os.environ.get("GITHUB_OUTPUT")
    text = "".join(f"{key}={value}\n" for key, value in outputs.items())
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


# ----------------------------------------------------------------------------- CLI


def _load_report(path: Path) -> dict:
    from pytest_promptgate.report.cli import load_report

    return load_report(path)


def _load(args: argparse.Namespace) -> tuple[dict, Context]:
    return _load_report(args.report), _context(args)


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register ``github {comment,issues,annotate,outputs}``; handlers are ``args.func(args) -> int``."""
    parser = subparsers.add_parser(
        "github", help="post the report to GitHub (PR comment, issues, annotations)"
    )
    commands = parser.add_subparsers(dest="github_command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--report", type=Path, required=True, help="the JSON report (--promptgate-report)"
        )
        sub.add_argument("--repo", help="owner/name (default: $GITHUB_REPOSITORY)")
        sub.add_argument(
            "--token-env", default="GITHUB_TOKEN", help="environment variable holding the token"
        )
        sub.add_argument(
            "--api-url", help="REST API root (default: $GITHUB_API_URL or https://api.github.com)"
        )

    comment = commands.add_parser(
        "comment", help="create or update the one report comment on a pull request"
    )
    common(comment)
    comment.add_argument(
        "--markdown", type=Path, help="the Markdown report (default: rendered from the JSON)"
    )
    comment.add_argument(
        "--pr", type=int, help="pull request number (default: from $GITHUB_EVENT_PATH)"
    )
    comment.add_argument(
        "--summary-written",
        action="store_true",
        help="the report is already in the job summary: on failure add only a note",
    )
    comment.set_defaults(func=_guard(run_comment))

    issues = commands.add_parser(
        "issues", help="open or update one issue per prompt flagged for fine-tuning"
    )
    common(issues)
    issues.add_argument(
        "--label", default=DEFAULT_LABEL, help=f"issue label (default: {DEFAULT_LABEL})"
    )
    issues.set_defaults(func=_guard(run_issues))

    annotate = commands.add_parser(
        "annotate", help="print ::error annotations for the first failing cases"
    )
    annotate.add_argument("--report", type=Path, required=True)
    annotate.add_argument(
        "--path-prefix", default="", help="prefix for case files (the working directory)"
    )
    annotate.set_defaults(func=_guard(run_annotate))

    outputs = commands.add_parser(
        "outputs", help="write verdict, report-path, failed-prompts to $GITHUB_OUTPUT"
    )
    outputs.add_argument("--report", type=Path, required=True)
    outputs.set_defaults(func=_guard(run_outputs))
    return parser


def _guard(handler):
    """Usage errors become one line and exit 2; the token is redacted from anything we print."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except PromptgateError as exc:
            token = os.environ.get(getattr(args, "token_env", "GITHUB_TOKEN") or "GITHUB_TOKEN", "")
            text = exc.format()
            print(
                f"promptgate: error: {text.replace(token, '***') if token else text}",
                file=sys.stderr,
            )
            return 2

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="promptgate")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_cli(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""``promptgate github``: the sticky PR comment, fine-tune candidate issues, annotations, outputs.

Everything here is best effort for the *gate*: a missing token, a read-only fork token or an
API failure never changes the verdict; we degrade to the job summary, print a ``::warning::``
and exit 0. The token is sent only in the Authorization header, only to the API origin, and is
redacted from every message we print or raise.

One module per subject: ``api`` (REST client on urllib, pagination, token redaction),
``workflow`` (the Actions run: repository, token, PR number, job summary, warnings),
``comment``, ``issues``, ``annotations``, ``outputs`` (one sub-command each) and ``cli``
(``add_cli``, which ``pytest_promptgate.cli`` calls). The names callers use are re-exported here.
"""

from __future__ import annotations

from pytest_promptgate.github.annotations import MAX_ANNOTATIONS, error_annotations, run_annotate
from pytest_promptgate.github.api import (
    BOT_LOGIN,
    DEFAULT_API_URL,
    GitHubClient,
    GitHubError,
    token_login,
)
from pytest_promptgate.github.cli import add_cli, main
from pytest_promptgate.github.comment import comment_body, run_comment, upsert_comment
from pytest_promptgate.github.issues import (
    DEFAULT_LABEL,
    ensure_label,
    find_finetune_issues,
    finetune_issue_body,
    finetune_issue_title,
    finetune_marker,
    recovered_comment,
    run_issues,
    sync_finetune_issues,
)
from pytest_promptgate.github.outputs import action_outputs, run_outputs
from pytest_promptgate.github.workflow import Context, pr_number_from_event

__all__ = [
    "BOT_LOGIN",
    "DEFAULT_API_URL",
    "DEFAULT_LABEL",
    "MAX_ANNOTATIONS",
    "Context",
    "GitHubClient",
    "GitHubError",
    "action_outputs",
    "add_cli",
    "comment_body",
    "ensure_label",
    "error_annotations",
    "find_finetune_issues",
    "finetune_issue_body",
    "finetune_issue_title",
    "finetune_marker",
    "main",
    "pr_number_from_event",
    "recovered_comment",
    "run_annotate",
    "run_comment",
    "run_issues",
    "run_outputs",
    "sync_finetune_issues",
    "token_login",
    "upsert_comment",
]

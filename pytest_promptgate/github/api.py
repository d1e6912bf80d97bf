"""The GitHub REST API over urllib: requests, Link-header pagination, the token kept out of messages.

urllib only (no client library to install in the action's venv); ``GITHUB_API_URL`` is honoured
so GitHub Enterprise works. The token is sent only in the Authorization header, only to the API
origin (redirects and pagination links to another origin are refused), and is redacted from
every message we print or raise (``redact``) and from every body we send.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

DEFAULT_API_URL = "https://api.github.com"
BOT_LOGIN = "github-actions[bot]"
PERMISSION_STATUSES = (401, 403, 404)


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


def redact(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def token_login(client: GitHubClient) -> str:
    """Whose comments are ours: the token's user, or the Actions bot for installation tokens."""
    try:
        user, _ = client.request("GET", "/user")
    except GitHubError as exc:
        if exc.status in PERMISSION_STATUSES:
            return BOT_LOGIN
        raise
    return (user or {}).get("login") or BOT_LOGIN

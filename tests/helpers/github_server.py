"""A loopback fake of the GitHub REST API for tests.

The fake (a ThreadingHTTPServer on 127.0.0.1) keeps comments, issues and labels in memory,
paginates like GitHub (per_page, page, Link rel="next" with absolute URLs), can be told to fail
chosen endpoints, and records every request with its headers and body so the tests can check
what was sent, not only what came back.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pytest_promptgate import github
from pytest_promptgate.report.markdown import REPORT_MARKER

REPO = "acme/prompts"
CANARY = "ghs_CANARY_4f1d2c9e8b7a6f5e4d3c2b1a0"


PROXY_VARIABLES = (
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
)


def clear_proxies(monkeypatch) -> None:
    """The loopback fake must be reached directly: a proxy from the environment would not."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


class FakeGitHub:
    """In-memory repository state plus a request log."""

    def __init__(self) -> None:
        self.user_status = 200
        self.user_login = "promptgate-bot"
        self.comments: dict[int, list[dict]] = {}
        self.issues: list[dict] = []
        self.labels: set[str] = set()
        self.failures: dict[
            tuple[str, str], tuple[int, str]
        ] = {}  # (METHOD, path regex) -> (status, message)
        self.requests: list[dict] = []
        self.next_id = 1000
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGitHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- helpers for tests
    def add_comment(self, pr: int, body: str, login: str) -> dict:
        self.next_id += 1
        comment = {
            "id": self.next_id,
            "body": body,
            "user": {"login": login},
            "html_url": f"https://github.example/{REPO}/pull/{pr}#issuecomment-{self.next_id}",
        }
        self.comments.setdefault(pr, []).append(comment)
        return comment

    def ours(self, pr: int) -> list[dict]:
        return [c for c in self.comments.get(pr, []) if REPORT_MARKER in c["body"]]

    def calls(self, method: str, pattern: str) -> list[dict]:
        return [
            r for r in self.requests if r["method"] == method and re.fullmatch(pattern, r["path"])
        ]

    # -- HTTP
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _respond(self, status: int, payload, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with fake.lock:
                    fake.requests.append(
                        {
                            "method": method,
                            "path": parsed.path,
                            "query": query,
                            "headers": dict(self.headers.items()),
                            "body": raw,
                        }
                    )
                    for (fail_method, pattern), (status, message) in fake.failures.items():
                        if fail_method == method and re.fullmatch(pattern, parsed.path):
                            return self._respond(status, {"message": message})
                    body = json.loads(raw) if raw else None
                    status, payload, headers = fake.route(method, parsed.path, query, body)
                self._respond(status, payload, headers)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PATCH(self):
                self._handle("PATCH")

        return Handler

    def _page(self, path: str, query: dict, items: list) -> tuple[int, list, dict]:
        per_page = int(query.get("per_page", 30))
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            next_query = dict(query, page=str(page + 1))
            headers["Link"] = f'<{self.url}{path}?{urllib.parse.urlencode(next_query)}>; rel="next"'
        return 200, chunk, headers

    def route(self, method: str, path: str, query: dict, body) -> tuple[int, object, dict]:
        if path == "/user" and method == "GET":
            if self.user_status != 200:
                return self.user_status, {"message": "Resource not accessible by integration"}, {}
            return 200, {"login": self.user_login}, {}
        match = re.fullmatch(rf"/repos/{REPO}/issues/(\d+)/comments", path)
        if match:
            number = int(match.group(1))
            if method == "GET":
                return self._page(path, query, self.comments.get(number, []))
            issue = next((i for i in self.issues if i["number"] == number), None)
            comment = self.add_comment(
                number,
                body["body"],
                self.user_login if self.user_status == 200 else github.BOT_LOGIN,
            )
            if issue is not None:
                issue["comments"] += 1
            return 201, comment, {}
        match = re.fullmatch(rf"/repos/{REPO}/issues/comments/(\d+)", path)
        if match and method == "PATCH":
            for comments in self.comments.values():
                for comment in comments:
                    if comment["id"] == int(match.group(1)):
                        comment["body"] = body["body"]
                        return 200, comment, {}
            return 404, {"message": "Not Found"}, {}
        match = re.fullmatch(rf"/repos/{REPO}/labels/(.+)", path)
        if match and method == "GET":
            name = urllib.parse.unquote(match.group(1))
            return (
                (200, {"name": name}, {})
                if name in self.labels
                else (404, {"message": "Not Found"}, {})
            )
        if path == f"/repos/{REPO}/labels" and method == "POST":
            if body["name"] in self.labels:
                return 422, {"message": "already_exists"}, {}
            self.labels.add(body["name"])
            return 201, {"name": body["name"]}, {}
        if path == f"/repos/{REPO}/issues":
            if method == "GET":
                items = [
                    i
                    for i in self.issues
                    if query.get("labels") in [label["name"] for label in i["labels"]]
                    and (query.get("state") == "all" or i["state"] == query.get("state", "open"))
                ]
                return self._page(path, query, items)
            for name in body.get("labels", []):
                self.labels.add(name)  # GitHub creates unknown labels on the fly too
            issue = {
                "number": len(self.issues) + 1,
                "title": body["title"],
                "body": body["body"],
                "labels": [{"name": n} for n in body.get("labels", [])],
                "state": "open",
                "comments": 0,
            }
            self.issues.append(issue)
            return 201, issue, {}
        match = re.fullmatch(rf"/repos/{REPO}/issues/(\d+)", path)
        if match and method == "PATCH":
            issue = next(i for i in self.issues if i["number"] == int(match.group(1)))
            issue.update({k: v for k, v in body.items() if k in ("title", "body", "state")})
            return 200, issue, {}
        return 404, {"message": f"no route {method} {path}"}, {}

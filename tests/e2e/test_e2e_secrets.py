"""End-to-end: API keys and the GitHub token never reach anything a run produces.

Unique canary strings stand in for the OpenAI key (environment), a suite's ``params.api_key``
and the GitHub token. The fake provider behaves like OpenAI does on a bad key: its error
message quotes the key it was sent. After a pytest run with every report and the GitHub
commands, everything produced is searched for the canaries.
"""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import uuid

import pytest
from helpers.github_server import REPO, FakeGitHub, clear_proxies

from pytest_promptgate.testing import openai_server

RUN = uuid.uuid4().hex
ENV_KEY = f"sk-canary-env-{RUN}"  # OPENAI_API_KEY: looks like a real key
PARAM_KEY = f"canary-param-{RUN}"  # params.api_key: no `sk-` shape to give it away
GITHUB_TOKEN = f"ghs_canary_{RUN}"
CANARIES = {"OPENAI_API_KEY": ENV_KEY, "params.api_key": PARAM_KEY, "GITHUB_TOKEN": GITHUB_TOKEN}


@pytest.fixture
def provider_echoes_the_key(monkeypatch):
    """Error replies quote the key of the request, as OpenAI's "Incorrect API key provided" does."""
    sent = threading.local()
    answer = openai_server._Handler._answer

    def remember_key(self, number, fault, body):
        sent.key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        return answer(self, number, fault, body)

    def error_body(status):
        key = getattr(sent, "key", "")
        return {
            "error": {
                "message": f"Incorrect API key provided: {key}. (status {status}, auth: Bearer {key})",
                "type": "invalid_request_error",
                "code": status,
            }
        }

    monkeypatch.setattr(openai_server._Handler, "_answer", remember_key)
    monkeypatch.setattr(openai_server, "_error_body", error_body)


def authorization(request: dict) -> str | None:
    return next((v for k, v in request["headers"].items() if k.lower() == "authorization"), None)


def keyed_suite(base_url: str) -> str:
    """Its own key in params; two cases fail at the provider (401, then 500 after retries)."""
    return textwrap.dedent(
        f"""\
        prompt: keyed
        model: openai/fake-model
        params: {{api_base: "{base_url}", api_key: {PARAM_KEY}, temperature: 0}}
        user: "{{{{ ticket }}}}"
        cases:
          - {{id: ok-1, vars: {{ticket: "reply: billing"}}, expect: [{{equals: billing}}]}}
          - {{id: ok-2, vars: {{ticket: "reply: billing"}}, expect: [{{equals: billing}}]}}
          - {{id: miss, vars: {{ticket: "reply: bug"}}, expect: [{{equals: billing}}]}}
          - {{id: unauthorized, vars: {{ticket: "boom401"}}, expect: [{{equals: billing}}]}}
          - {{id: server-error, vars: {{ticket: "boom500"}}, expect: [{{equals: billing}}]}}
        """
    )


def plateau_suite(base_url: str) -> str:
    """The key from OPENAI_API_KEY; three versions stuck at 50%: flagged for fine-tuning."""
    cases = "\n".join(
        f'  - {{id: c{i}, vars: {{ticket: "reply: {"billing" if i % 2 else "bug"} {i}"}}, expect: [{{contains: billing}}]}}'
        for i in range(10)
    )
    versions = "\n".join(
        f'  v{n}:\n    system: "Classify the ticket (attempt {n})."\n    user: "{{{{ ticket }}}}"'
        for n in (1, 2, 3)
    )
    return (
        f'prompt: plateau\nmodel: openai/fake-model\nparams: {{api_base: "{base_url}", temperature: 0}}\n'
        "usage: {calls_per_month: 1000, months: 12}\n"
        f"versions:\n{versions}\ncases:\n{cases}\n"
        '  - {id: unauthorized, vars: {ticket: "boom401"}, expect: [{contains: billing}]}\n'
    )


def test_canary_secrets_appear_nowhere_a_run_and_the_github_commands_produce(
    pytester, fake_openai, provider_echoes_the_key, monkeypatch
):
    clear_proxies(monkeypatch)
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    summary = pytester.path / "step-summary.md"
    summary.write_text("")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    fake_openai.fault_on = {"boom401": "401", "boom500": "500"}
    pytester.makefile(".promptgate.yaml", keyed=keyed_suite(fake_openai.base_url))
    pytester.makefile(".promptgate.yaml", plateau=plateau_suite(fake_openai.base_url))

    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--promptgate-retries",
        "1",
        "--junitxml",
        "junit.xml",
        "--promptgate-report",
        "report.json",
        "--promptgate-markdown",
        "report.md",
        "--promptgate-html",
        "report.html",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*authentication failed*Incorrect API key provided*"])
    report = json.loads((pytester.path / "report.json").read_text())
    verdicts = {p["prompt"]: p["verdict"] for p in report["prompts"]}
    assert verdicts == {"keyed": "INCONCLUSIVE", "plateau": "CONSIDER FINE-TUNING"}
    errors = [c["error"] for c in report["cases"] if c["status"] == "error"]
    assert len(errors) == 5 and all("Incorrect API key provided" in e for e in errors)

    # The GitHub commands, as the action runs them, against a loopback GitHub API.
    outputs = [result.stdout.str(), result.stderr.str()]
    with FakeGitHub() as github:
        common = ["--report", "report.json", "--repo", REPO, "--api-url", github.url]
        for argv in (
            ["github", "comment", *common, "--markdown", "report.md", "--pr", "7"],
            ["github", "issues", *common],
            ["github", "annotate", "--report", "report.json"],
            ["report", "report.json"],
        ):
            run = pytester.run(sys.executable, "-m", "pytest_promptgate", *argv)
            assert run.ret == 0, run.stderr.str()
            outputs += [run.stdout.str(), run.stderr.str()]
        github_requests = list(github.requests)
    assert github.issues and github.ours(7), "the commands reached the fake GitHub"

    # Where each secret legitimately goes: the Authorization header of its own server.
    model_requests = fake_openai.requests
    sent_keys = {authorization(r) for r in model_requests}
    assert sent_keys == {f"Bearer {PARAM_KEY}", f"Bearer {ENV_KEY}"}
    assert {authorization(r) for r in github_requests} == {f"Bearer {GITHUB_TOKEN}"}

    # Everywhere else: nowhere.
    haystacks: dict[str, str] = {f"output {i}": text for i, text in enumerate(outputs)}
    for path in sorted(pytester.path.rglob("*")):
        if path.is_file() and not path.name.endswith(".promptgate.yaml"):  # the suite holds its key
            haystacks[str(path.relative_to(pytester.path))] = path.read_bytes().decode(
                "utf-8", "replace"
            )
    for request in model_requests:
        others = {k: v for k, v in request["headers"].items() if k.lower() != "authorization"}
        haystacks[f"model request {request['n']}"] = json.dumps(
            [request["path"], request["body"], others]
        )
    for number, request in enumerate(github_requests):
        others = {k: v for k, v in request["headers"].items() if k.lower() != "authorization"}
        haystacks[f"github request {number}"] = json.dumps(
            [request["path"], request["query"], request["body"].decode("utf-8", "replace"), others]
        )
    expected = {"junit.xml", "report.json", "report.md", "report.html", "step-summary.md"}
    assert expected <= set(haystacks), sorted(haystacks)
    assert any(name.startswith(".promptgate/cache/") for name in haystacks)
    assert ".promptgate/history.jsonl" in haystacks

    leaks = [
        f"{secret} in {where}"
        for where, text in haystacks.items()
        for secret, value in CANARIES.items()
        if value in text
    ]
    assert leaks == []

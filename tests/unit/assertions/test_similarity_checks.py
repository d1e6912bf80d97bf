"""Similarity checks (assertions/similarity.py): levenshtein, rouge-n, bleu, similar."""

from __future__ import annotations

import json

import pytest
from helpers.suite_expectations import loads, run_check, suite_error

from pytest_promptgate.assertions.similarity import cosine, embedding_model, rouge_n
from pytest_promptgate.cache import ResponseCache
from pytest_promptgate.model import ProviderFailure
from pytest_promptgate.testing.openai_server import FakeOpenAI, embed_text

# --------------------------------------------------------------------------- levenshtein


def test_levenshtein_default_allows_five_edits() -> None:
    assert run_check("levenshtein", "colour", "color").passed  # 1 edit
    assert run_check("levenshtein", "Order shipped", "  order shipped\n").passed  # stripped
    far = run_check("levenshtein", "refund issued", "we escalated your ticket")
    assert not far.passed and "edit distance > 5" in far.reason


def test_levenshtein_threshold_is_the_maximum_distance_and_negates() -> None:
    assert not run_check("levenshtein", "kitten", "sitting", options={"threshold": 2}).passed
    assert run_check("levenshtein", "kitten", "sitting", options={"threshold": 3}).passed
    assert run_check(
        "levenshtein", "kitten", "sitting", negate=True, options={"threshold": 2}
    ).passed


def test_levenshtein_bad_values_fail_at_load(tmp_path) -> None:
    error, line = suite_error(tmp_path, "- {type: levenshtein, value: abc, threshold: 0.5}")
    assert f"bad.promptgate.yaml:{line}:" in error and "whole number" in error
    error, line = suite_error(tmp_path, "- levenshtein: [a, b]")
    assert f":{line}:" in error and "needs a reference string" in error
    (exp,) = loads(tmp_path, "- {type: levenshtein, value: abc, threshold: 2}")
    assert exp.options == {"threshold": 2}


# --------------------------------------------------------------------------- rouge-n


def test_rouge_n_matches_googles_reference_implementation() -> None:
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rouge3"])
    pairs = [
        ("the cat sat on the mat", "the cat is on the mat"),
        ("Refunds take 5 days, the refund was issued", "The refund was issued today"),
        ("completely different words", "nothing alike here"),
        ("a a a b", "a b b b"),
    ]
    for candidate, reference in pairs:
        scores = scorer.score(reference, candidate)
        for n in (1, 2, 3):
            expected = scores[f"rouge{n}"].fmeasure
            assert rouge_n(candidate, reference, n) == pytest.approx(expected, abs=1e-12)


def test_rouge_n_threshold_default_and_option() -> None:
    reference = "The refund for order A123 was issued today"
    ok = run_check("rouge-n", reference, "Today the refund for order A123 was issued")
    assert ok.passed and ok.score == pytest.approx(1.0)
    low = run_check("rouge-n", reference, "We escalated the order")
    assert not low.passed and "< threshold 0.75" in low.reason
    assert run_check("rouge-n", reference, "We escalated the order", negate=True).passed
    half = "the refund was issued"
    assert run_check("rouge-n", reference, half, options={"threshold": 0.5}).passed
    assert not run_check("rouge-n", reference, half, options={"threshold": 0.5, "n": 2}).passed


def test_rouge_n_bad_values_fail_at_load(tmp_path) -> None:
    error, line = suite_error(tmp_path, "- {type: rouge-n, value: ref, threshold: 75}")
    assert f":{line}:" in error and "threshold needs a number from 0 to 1" in error
    error, line = suite_error(tmp_path, "- {type: rouge-n, value: ref, n: 7}")
    assert f":{line}:" in error and "n-gram size" in error
    error, line = suite_error(tmp_path, "- rouge-n: {a: 1}")
    assert f":{line}:" in error and "invalid `rouge-n` expectation" in error


# --------------------------------------------------------------------------- bleu


def test_bleu_uses_sacrebleu_and_the_default_threshold() -> None:
    from sacrebleu.metrics import BLEU

    reference = "The refund for order A123 was issued today."
    candidate = "the refund for order A123 was issued today ."
    expected = BLEU(lowercase=True, effective_order=True).sentence_score(candidate, [reference])
    result = run_check("bleu", reference, candidate)
    assert result.passed and result.score == pytest.approx(expected.score / 100)
    low = run_check("bleu", reference, "We escalated your ticket to a human agent.")
    assert not low.passed and "BLEU" in low.reason and "< threshold 0.5" in low.reason
    assert run_check("bleu", reference, "We escalated your ticket.", negate=True).passed


def test_bleu_takes_several_references_and_a_threshold() -> None:
    refs = ["The order ships on Monday.", "Your order will ship Monday."]
    assert run_check("bleu", refs, "Your order will ship Monday.").passed
    close = "Your order ships Monday."
    assert not run_check("bleu", refs, close, options={"threshold": 0.9}).passed
    assert not run_check("bleu", refs, "").passed  # an empty output scores 0


def test_bleu_bad_values_fail_at_load(tmp_path) -> None:
    error, line = suite_error(tmp_path, "- bleu: []")
    assert f":{line}:" in error and "empty list of references" in error
    error, line = suite_error(tmp_path, "- {type: bleu, value: x, threshold: high}")
    assert f":{line}:" in error and "threshold" in error


# --------------------------------------------------------------------------- similar


def similar(fake: FakeOpenAI, cache: ResponseCache | None, value, output, **kw):
    params = {"api_base": fake.base_url, "api_key": "sk-test"}
    return run_check("similar", value, output, params=params, cache=cache, **kw)


def embedding_requests(fake: FakeOpenAI) -> list[dict]:
    return [r for r in fake.requests if r["path"].endswith("/embeddings")]


def test_similar_scores_the_cosine_of_the_loopback_embeddings(fake_openai, tmp_path) -> None:
    reference = "the refund for your order was issued"
    output = "your refund was issued for the order today"
    result = similar(fake_openai, None, reference, output)
    expected = cosine(embed_text(output), embed_text(reference))
    assert result.score == pytest.approx(expected, abs=1e-5)
    assert result.passed == (expected >= 0.75) and expected > 0.75
    (request,) = embedding_requests(fake_openai)
    assert request["body"]["model"] == "text-embedding-3-small"
    assert request["body"]["input"] == [output, reference]


def test_similar_fails_below_the_threshold_and_negates(fake_openai) -> None:
    reference = "the refund for your order was issued"
    unrelated = "please reset your password from the login page"
    assert not similar(fake_openai, None, reference, unrelated).passed
    assert similar(fake_openai, None, reference, unrelated, negate=True).passed
    strict = similar(
        fake_openai, None, reference, "the refund was issued", options={"threshold": 0.99}
    )
    assert not strict.passed and "< threshold 0.99" in strict.reason


def test_similar_embeddings_are_cached_on_disk(fake_openai, tmp_path) -> None:
    cache = ResponseCache(tmp_path / "cache")
    first = similar(fake_openai, cache, "refund issued", "the refund was issued")
    assert len(embedding_requests(fake_openai)) == 1
    files = sorted((tmp_path / "cache" / "embeddings").rglob("*.json"))
    assert len(files) == 2  # output and reference
    assert json.loads(files[0].read_text())["model"] == "openai/text-embedding-3-small"
    again = similar(fake_openai, cache, "refund issued", "the refund was issued")
    assert len(embedding_requests(fake_openai)) == 1  # both vectors came from the cache
    assert again.score == first.score
    replay = ResponseCache(tmp_path / "cache", replay=True)
    assert (
        similar(fake_openai, replay, "refund issued", "the refund was issued").score == first.score
    )
    with pytest.raises(ProviderFailure) as info:  # the case becomes an error, not a miss
        similar(fake_openai, replay, "refund issued", "a new output")
    assert "replay" in (info.value.call.error or "")
    assert len(embedding_requests(fake_openai)) == 1


def test_similar_provider_option_and_failed_calls(fake_openai) -> None:
    similar(fake_openai, None, "x y", "x y", options={"provider": "openai:embedding:my-embed"})
    assert embedding_requests(fake_openai)[-1]["body"]["model"] == "my-embed"
    assert embedding_model(None) == "openai/text-embedding-3-small"
    fake_openai.faults = ["400"]
    with pytest.raises(ProviderFailure) as info:
        similar(fake_openai, None, "refund issued", "the refund was issued")
    error = info.value.call.error or ""
    assert "embedding call" in error and "400" in error and "sk-test" not in error


def test_similar_bad_values_fail_at_load(tmp_path) -> None:
    error, line = suite_error(tmp_path, "- similar: 0.8")
    assert f":{line}:" in error and "needs a reference string" in error
    error, line = suite_error(tmp_path, "- {type: similar, value: ref, provider: ''}")
    assert f":{line}:" in error and "embedding model" in error

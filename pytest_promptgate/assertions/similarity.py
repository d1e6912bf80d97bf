"""Similarity to a reference text: ``levenshtein``, ``rouge-n``, ``bleu``, ``similar``.

What belongs here: checks that score the output against a reference (the value) and pass at a
``threshold`` option, as promptfoo does: ``{type: bleu, value: "...", threshold: 0.6}``.

* ``levenshtein``: the edit distance (``rapidfuzz``, a maintained C++ implementation) between
  the stripped output and the value is at most ``threshold`` (default 5, promptfoo's).
* ``rouge-n``: ROUGE-N F1 (promptfoo's ``rouge-n``, n = 1 unless the ``n`` option says
  otherwise) is at least ``threshold`` (default 0.75). Tokens are the lower-cased runs of word
  characters; the overlap counts each n-gram at most as often as it occurs in both texts.
  Computed here (a dozen lines of counting) rather than with Google's ``rouge-score``, whose
  import takes ~2 s because it loads NLTK for a stemmer we do not use; the unit tests check
  this function against ``rouge-score`` (installed with the ``test`` extra).
* ``bleu``: sentence BLEU from ``sacrebleu`` (the standard, reproducible BLEU: 13a
  tokenisation, exponential smoothing, lower-cased like promptfoo's), scaled to 0..1, at least
  ``threshold`` (default 0.5). The value may be a list of references.
* ``similar``: cosine similarity of the output's and the value's embeddings, fetched through
  ``litellm.aembedding`` with the model of the ``provider`` option (default
  ``openai/text-embedding-3-small``; promptfoo's ``openai:embedding:<model>`` is understood),
  at least ``threshold`` (default 0.75). The endpoint and key are the suite's ``params``
  (``api_base``, ``api_key``). Vectors are cached under the run's cache directory
  (``embeddings/``), keyed on (endpoint, model, text), written atomically; a replay
  (``--promptgate-replay``) never calls the endpoint. A failed embedding call makes the case an
  error, not a failure.

``rapidfuzz`` and ``sacrebleu`` are imported inside the checks.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_promptgate.assertions.compat import validate_fraction
from pytest_promptgate.assertions.registry import CheckContext, CheckOutcome, Validator, builtin
from pytest_promptgate.assertions.values import as_text, clean_text, is_number, kind, quote
from pytest_promptgate.model import CallResult, ProviderFailure

DEFAULT_MAX_DISTANCE = 5
DEFAULT_ROUGE_THRESHOLD = 0.75
DEFAULT_BLEU_THRESHOLD = 0.5
DEFAULT_SIMILAR_THRESHOLD = 0.75
DEFAULT_EMBEDDING_MODEL = "openai/text-embedding-3-small"
EMBEDDING_TIMEOUT_S = 60.0
_WORD = re.compile(r"\w+")


def _reference_value(type_name: str, allow_list: bool = False) -> Validator:
    example = f"{{type: {type_name}, value: 'The refund was issued.', threshold: 0.8}}"

    def validate(value: Any, suite_dir: Path) -> None:
        items = value if allow_list and isinstance(value, list) else [value]
        if allow_list and isinstance(value, list) and not value:
            raise ValueError(f"{type_name} has an empty list of references; write e.g. {example}")
        for item in items:
            if not isinstance(item, str) or not item.strip():
                what = (
                    "a reference string or a list of them" if allow_list else "a reference string"
                )
                raise ValueError(
                    f"{type_name} needs {what}, got {kind(item)}; write e.g. {example}"
                )

    return validate


def _threshold(ctx: CheckContext, default: float) -> float:
    given = ctx.options.get("threshold")
    return float(given) if is_number(given) else default


def _score_outcome(label: str, score: float, threshold: float) -> CheckOutcome:
    if score >= threshold:
        return CheckOutcome(True, f"{label} {score:.3f} >= threshold {threshold:g}", score)
    return CheckOutcome(False, f"{label} {score:.3f} < threshold {threshold:g}", score)


# --------------------------------------------------------------------------- levenshtein


def _whole_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value) and float(value).is_integer()


def _validate_distance(value: Any, suite_dir: Path) -> None:
    if not _whole_number(value) or value < 0:
        raise ValueError(
            f"levenshtein threshold is the largest edit distance allowed, a whole number >= 0, got {value!r}; write e.g. threshold: 3"
        )


@builtin(
    "levenshtein",
    validate=_reference_value("levenshtein"),
    options={"threshold": _validate_distance},
)
def check_levenshtein(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    from rapidfuzz.distance import Levenshtein

    limit = int(ctx.options.get("threshold", DEFAULT_MAX_DISTANCE))
    reference = as_text(value)
    # score_cutoff bounds the work on a long output: past the limit the distance is limit + 1.
    distance = Levenshtein.distance(output.strip(), reference, score_cutoff=limit)
    if distance <= limit:
        return CheckOutcome(
            True, f"edit distance {distance} <= {limit} from {quote(reference, 40)}"
        )
    return CheckOutcome(
        False, f"edit distance > {limit} from {quote(reference, 40)}: {quote(output.strip())}"
    )


# --------------------------------------------------------------------------- rouge-n


def _ngrams(text: str, n: int) -> Counter[tuple[str, ...]]:
    tokens = _WORD.findall(text.lower())
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def rouge_n(candidate: str, reference: str, n: int = 1) -> float:
    """ROUGE-N F1 of ``candidate`` against ``reference`` (0 when either has no n-gram)."""
    cand, ref = _ngrams(candidate, n), _ngrams(reference, n)
    overlap = sum((cand & ref).values())
    if not overlap:
        return 0.0
    precision = overlap / sum(cand.values())
    recall = overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def _validate_n(value: Any, suite_dir: Path) -> None:
    if not _whole_number(value) or not 1 <= value <= 4:
        raise ValueError(f"rouge-n `n` is the n-gram size, 1 to 4, got {value!r}; write e.g. n: 2")


@builtin(
    "rouge-n",
    validate=_reference_value("rouge-n"),
    options={"threshold": validate_fraction, "n": _validate_n},
)
def check_rouge_n(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    n = int(ctx.options.get("n", 1))
    score = rouge_n(output, as_text(value), n)
    return _score_outcome(f"ROUGE-{n}", score, _threshold(ctx, DEFAULT_ROUGE_THRESHOLD))


# --------------------------------------------------------------------------- bleu


def bleu(candidate: str, references: Sequence[str]) -> float:
    """Sentence BLEU (sacrebleu, lower-cased, exponential smoothing) on a 0..1 scale."""
    from sacrebleu.metrics import BLEU

    scorer = BLEU(lowercase=True, effective_order=True)
    return float(scorer.sentence_score(candidate, list(references)).score) / 100.0


@builtin(
    "bleu",
    validate=_reference_value("bleu", allow_list=True),
    options={"threshold": validate_fraction},
)
def check_bleu(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    references = [as_text(v) for v in value] if isinstance(value, list) else [as_text(value)]
    if not output.strip():
        return _score_outcome("BLEU", 0.0, _threshold(ctx, DEFAULT_BLEU_THRESHOLD))
    score = bleu(output.strip(), references)
    return _score_outcome("BLEU", score, _threshold(ctx, DEFAULT_BLEU_THRESHOLD))


# --------------------------------------------------------------------------- similar


def _validate_provider(value: Any, suite_dir: Path) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"similar `provider` is an embedding model (a litellm model string), got {kind(value)}; write e.g. provider: openai/text-embedding-3-small"
        )


def embedding_model(provider: str | None) -> str:
    """The litellm model string of ``provider`` (promptfoo's ``openai:embedding:<m>`` too)."""
    if not provider:
        return DEFAULT_EMBEDDING_MODEL
    parts = provider.split(":")
    if len(parts) == 3 and parts[1] == "embedding" and parts[0] and parts[2]:
        return f"{parts[0]}/{parts[2]}"
    return provider


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class EmbeddingCache:
    """Vectors on disk: ``<dir>/<key[:2]>/<key>.json``, key = sha256 of (api_base, model, text)."""

    def __init__(self, directory: Path, reads: bool, writes: bool) -> None:
        self.directory = directory
        self.reads = reads
        self.writes = writes

    @staticmethod
    def key(api_base: str | None, model: str, text: str) -> str:
        canonical = json.dumps([api_base, model, text], ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> list[float] | None:
        if not self.reads:
            return None
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent or damaged: a miss
        vector = data.get("embedding") if isinstance(data, dict) else None
        if isinstance(vector, list) and vector and all(is_number(v) for v in vector):
            return [float(v) for v in vector]
        return None

    def put(self, key: str, model: str, vector: Sequence[float]) -> None:
        if not self.writes:
            return
        from pytest_promptgate.atomic import write_atomic

        document = {"model": model, "embedding": list(vector)}
        try:
            write_atomic(self.path(key), json.dumps(document), durable=False)
        except OSError:
            pass  # a cache that cannot be written is only a later miss


def _embedding_cache(ctx: CheckContext) -> EmbeddingCache | None:
    cache = getattr(ctx, "cache", None)
    directory = getattr(cache, "directory", None)
    if directory is None:
        return None
    return EmbeddingCache(
        Path(directory) / "embeddings",
        reads=bool(getattr(cache, "reads", True)),
        writes=bool(getattr(cache, "writes_enabled", True)),
    )


def _failure(message: str, kind_: str = "server") -> ProviderFailure:
    return ProviderFailure(CallResult(output=None, error=message, error_kind=kind_))


async def embed(texts: Sequence[str], model: str, ctx: CheckContext) -> list[list[float]]:
    """One vector per text, from the cache or one ``litellm.aembedding`` call for the misses."""
    params: Mapping[str, Any] = getattr(ctx, "params", None) or {}
    api_base = params.get("api_base") or params.get("base_url")
    api_key = params.get("api_key")
    cache = _embedding_cache(ctx)
    keys = [EmbeddingCache.key(api_base, model, t) for t in texts]
    vectors: list[list[float] | None] = [cache.get(k) if cache else None for k in keys]
    missing = [i for i, v in enumerate(vectors) if v is None]
    if missing:
        if getattr(getattr(ctx, "cache", None), "replay", False):
            raise _failure(
                f"similar: no recorded embedding for {model} in the cache (replay mode); run once without --promptgate-replay to record it",
                "config",
            )
        from pytest_promptgate.client import import_litellm, scrub

        litellm = import_litellm()
        kwargs: dict[str, Any] = {"timeout": EMBEDDING_TIMEOUT_S}
        if api_base:
            kwargs["api_base"] = api_base
        if api_key:
            kwargs["api_key"] = api_key
        try:
            response = await litellm.aembedding(
                model=model, input=[texts[i] for i in missing], **kwargs
            )
            data = sorted(_field(response, "data") or [], key=lambda d: _field(d, "index") or 0)
            fetched = [[float(x) for x in _field(item, "embedding")] for item in data]
        except Exception as exc:  # litellm maps every provider error to its own classes
            message = scrub(f"{type(exc).__name__}: {exc}", [api_key] if api_key else [])
            raise _failure(f"similar: embedding call to {model} failed: {clean_text(message, 300)}")
        if len(fetched) != len(missing):
            raise _failure(
                f"similar: {model} returned {len(fetched)} embeddings for {len(missing)} texts"
            )
        for index, vector in zip(missing, fetched):
            vectors[index] = vector
            if cache is not None:
                cache.put(keys[index], model, vector)
    return [v for v in vectors if v is not None]


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


@builtin(
    "similar",
    validate=_reference_value("similar", allow_list=True),
    options={"threshold": validate_fraction, "provider": _validate_provider},
)
async def check_similar(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    threshold = _threshold(ctx, DEFAULT_SIMILAR_THRESHOLD)
    references = [as_text(v) for v in value] if isinstance(value, list) else [as_text(value)]
    if not output.strip():
        return _score_outcome("cosine similarity", 0.0, threshold)
    model = embedding_model(ctx.options.get("provider"))
    vectors = await embed([output, *references], model, ctx)
    best = max(cosine(vectors[0], ref) for ref in vectors[1:])
    return _score_outcome("cosine similarity", best, threshold)

"""The supported keys: promptfoo's names and what each becomes here, all in one place.

Widening the importer later (when the loader accepts more of promptfoo's form) means editing
these tables; the tests check each table against the loader.
"""

from __future__ import annotations

# Keys of promptfoo's assertion object kept as written. `type`/`value` always; the others only
# where the loader accepts them for that type (`assertions.option_keys`): `threshold` is read by
# cost, latency, llm-rubric, assert-set and the similarity types, `provider` by `similar`.
# `assert` is an assert-set's list (converted item by item); `transform` is translated or a TODO.
ASSERTION_KEYS_KEPT: tuple[str, ...] = (
    "type",
    "value",
    "threshold",
    "weight",
    "metric",
    "provider",
)

# promptfoo assertion type -> our expectation type, where the semantics match (the `not-`
# prefix is handled separately). A type is emitted only if the registry also knows it.
ASSERTION_TYPES: dict[str, str] = {
    name: name
    for name in (
        "equals",
        "contains",
        "icontains",
        "contains-any",
        "contains-all",
        "icontains-any",
        "icontains-all",
        "starts-with",
        "ends-with",
        "regex",
        "is-json",
        "contains-json",
        "is-xml",
        "contains-xml",
        "is-refusal",
        "llm-rubric",
        "cost",
        "latency",
        "word-count",
        "levenshtein",
        "rouge-n",
        "bleu",
        "similar",
        "finish-reason",
        "tool-call",
        "is-valid-openai-tools-call",
        "assert-set",
    )
}

# Types whose promptfoo value is a list that may be written as one comma-separated string.
COMMA_LIST_TYPES = frozenset({"contains-any", "contains-all", "icontains-any", "icontains-all"})

# Types whose value promptfoo turns into text with String(value) (a number is fine there).
TEXT_TYPES = frozenset({"equals", "contains", "icontains", "starts-with", "ends-with", "regex"})

# Types promptfoo configures through `threshold` alone (it refuses them without one).
THRESHOLD_REQUIRED = frozenset({"cost", "latency"})

# Code-running assertions: their code is another language (or a different calling convention),
# so they are kept as a TODO with their text.
CODE_TYPES = frozenset({"javascript", "python", "webhook", "ruby"})

# Assertion keys that do not change the verdict of a single expectation: the expectation is
# converted and the key is reported (a TODO comment) when the loader does not take it there.
ADVISORY_ASSERTION_KEYS = frozenset({"weight", "metric", "provider", "rubricPrompt"})

# A JavaScript transform is translated only when it is `output` or `JSON.parse(output)`
# followed by these string methods (on `output` only) or by property paths (`.name`,
# `["name"]`, `[0]`, on parsed JSON only). JavaScript method -> Jinja2 filter; the results
# agree on text (JavaScript's and Python's whitespace and case tables differ only on rare
# characters such as U+0085 and U+0130).
TRANSFORM_METHODS: dict[str, str] = {"trim": "trim", "toLowerCase": "lower", "toUpperCase": "upper"}

# promptfoo provider id prefix -> litellm model prefix; the longest matching prefix wins.
PROVIDER_PREFIXES: dict[str, str] = {
    "openai:chat:": "openai/",
    "openai:responses:": "openai/",
    "openai:completion:": "text-completion-openai/",
    "openai:": "openai/",
    "anthropic:messages:": "anthropic/",
    "anthropic:completion:": "anthropic/",
    "anthropic:": "anthropic/",
    "azure:chat:": "azure/",
    "azure:completion:": "azure_text/",
    "azure:": "azure/",
    "azureopenai:chat:": "azure/",
    "azureopenai:completion:": "azure_text/",
    "azureopenai:": "azure/",
    "bedrock:converse:": "bedrock/converse/",
    "bedrock:completion:": "bedrock/",
    "bedrock:": "bedrock/",
    "vertex:chat:": "vertex_ai/",
    "vertex:": "vertex_ai/",
    "ollama:chat:": "ollama_chat/",
    "ollama:completion:": "ollama/",
    "ollama:": "ollama/",
    "google:": "gemini/",
    "mistral:": "mistral/",
    "groq:": "groq/",
    "openrouter:": "openrouter/",
    "deepseek:": "deepseek/",
    "togetherai:": "together_ai/",
    "perplexity:": "perplexity/",
    "xai:": "xai/",
    "cohere:": "cohere/",
    "fireworks:": "fireworks_ai/",
}

# promptfoo provider `config` key -> litellm keyword argument.
PROVIDER_PARAMS: dict[str, str] = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_completion_tokens",
    "top_p": "top_p",
    "top_k": "top_k",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "seed": "seed",
    "stop": "stop",
    "response_format": "response_format",
    "reasoning_effort": "reasoning_effort",
    "tools": "tools",  # OpenAI's tool format, which litellm takes as is
    "tool_choice": "tool_choice",
    "apiBaseUrl": "api_base",
    "apiVersion": "api_version",
    "region": "aws_region_name",
}

# Keys that hold credentials: never copied into a suite file.
SECRET_CONFIG_KEYS = frozenset({"apiKey", "apiKeyEnvar", "accessKeyId", "secretAccessKey"})

# promptfoo's base assertion types, for reading `__expected` CSV cells (`type:value`).
PROMPTFOO_TYPES = frozenset(
    """
    answer-relevance assert-set bleu classifier contains contains-all contains-any
    contains-html contains-json contains-sql contains-xml context-faithfulness context-recall
    context-relevance conversation-relevance cost equals f-score factuality finish-reason g-eval
    gleu guardrails icontains icontains-all icontains-any is-html is-json is-refusal is-sql
    is-valid-function-call is-valid-openai-function-call is-valid-openai-tools-call is-xml
    javascript latency levenshtein llm-rubric meteor model-graded-closedqa model-graded-factuality
    moderation perplexity perplexity-score pi python regex rouge-n ruby search-rubric select-best
    similar starts-with tool-call-f1 trace-error-spans trace-span-count trace-span-duration
    webhook word-count
    """.split()
)
# `__expected` types whose value promptfoo splits on commas, and those that get a threshold.
_CSV_THRESHOLD_TYPES = frozenset(
    """answer-relevance classifier context-faithfulness context-recall context-relevance cost
    latency levenshtein perplexity-score perplexity rouge-n similar starts-with""".split()
)

CONFIG_KEYS_HANDLED = frozenset(
    {"description", "prompts", "providers", "targets", "tests", "defaultTest", "assertionTemplates"}
)
# Keys about promptfoo's own run (output files, sharing, concurrency): nothing to convert.
CONFIG_KEYS_IGNORED = frozenset(
    {"outputPath", "sharing", "evaluateOptions", "writeLatestResults", "tags", "metadata"}
)
TEST_KEYS_HANDLED = frozenset({"description", "vars", "assert", "options", "threshold"})
PROMPT_TEXT_SUFFIXES = frozenset({".txt", ".md", ".j2", ".prompt", ".tmpl", ".jinja", ""})
CODE_SUFFIXES = frozenset({".py", ".js", ".ts", ".mjs", ".cjs", ".rb"})
# File vars promptfoo encodes (images, PDFs) rather than inlines as text.
BINARY_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".pdf", ".mp3", ".wav"})
SUITE_SUFFIX = ".promptgate.yaml"
MAX_NAME = 60

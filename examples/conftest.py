"""`pytest examples` runs offline on the bundled local model (examples/README.md).

``tool_calls.promptgate.yaml`` needs a model that calls tools, which SmolLM2-135M does not, so
it is collected only when the run names a model on the command line:

    pytest examples/tool_calls.promptgate.yaml --promptgate-model openai/gpt-4o-mini
"""

from __future__ import annotations

from pathlib import Path

HOSTED_ONLY = frozenset({"tool_calls.promptgate.yaml"})


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    if collection_path.name in HOSTED_ONLY and not config.getoption("promptgate_model", None):
        return True
    return None

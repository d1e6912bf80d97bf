"""Importing litellm once, offline and quiet, and preparing it for a run.

Its own module so that everything that needs litellm (the client, the bundled local provider,
the advisor, the preflight, similarity checks) imports it the same way without importing each
other. litellm is imported lazily: the import costs ~2-3 s and a run whose every call is a
cache hit must not pay for it (see /work/shared/notes/litellm.md).
"""

from __future__ import annotations

import gc
import logging
import os
import warnings
from typing import Any

_litellm: Any = None
_warmed = False


def import_litellm() -> Any:
    """Import litellm once, offline and quiet."""
    global _litellm
    if _litellm is None:
        # Without these, importing litellm fetches its price map from the internet (5 s
        # timeout) and token counting downloads tokenizers. The user's own setting wins.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
        with warnings.catch_warnings():  # its dependencies' deprecation chatter is not the user's
            warnings.simplefilter("ignore")
            import litellm

        # litellm leaves ~370k long-lived objects (its price map, pydantic models, provider
        # tables). Every full garbage collection walks them all: ~1.1-1.6 ms per case during a
        # run and ~2 s at interpreter teardown. Freezing moves everything alive now to the
        # permanent generation, which the collector never scans (measured on a 2,000-case
        # run: teardown GC 2.05 s -> 0.27 s, -3.1 s wall). Objects created later are
        # collected as usual.
        gc.freeze()
        litellm.suppress_debug_info = True  # otherwise every exception prints a help banner
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        _litellm = litellm
    return _litellm


async def warm_up() -> Any:
    """Import litellm and make one offline ``mock_response`` call: litellm loads much of itself
    lazily on its first call (~0.2 s of CPU, and pydantic warnings about its own types), which
    would otherwise land on the first real request and in the user's warning summary."""
    global _warmed
    litellm = import_litellm()
    if _warmed:
        return litellm
    _warmed = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            await litellm.acompletion(
                model="openai/promptgate-warm-up",
                messages=[{"role": "user", "content": "."}],
                mock_response=".",
            )
        except Exception:
            pass
    return litellm

"""pytest-promptgate: gate pull requests on the quality of LLM prompts.

The pytest plugin (``plugin.py``) is loaded through the ``pytest11`` entry point; the engine
modules are plain Python shared with the ``promptgate`` CLI and the GitHub Action.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"

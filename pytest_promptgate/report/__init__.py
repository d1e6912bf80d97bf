"""Renderers of the JSON report: terminal, JSON, Markdown, HTML."""

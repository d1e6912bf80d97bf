"""Render a Markdown report as GitHub shows a PR comment, for docs/img/pr-comment.png.

Not part of the package or its tests: a documentation tool, run by hand in its own venv.

    python -m venv /tmp/md && /tmp/md/bin/pip install markdown-it-py
    npm install --prefix /tmp/md github-markdown-css
    npm install --prefix /tmp/md mermaid@11   # GitHub draws the reports' mermaid charts
    # the picture shows the header and support-triage's section only (the other prompts' sections,
    # from the first '### ' heading to '### support-triage', are cut to keep the picture short):
    (sed -n '1,/^### /p' report.md | sed '$d'; sed -n '/^### support-triage/,$p' report.md) > trim.md
    /tmp/md/bin/python docs/img/render_markdown.py trim.md \
        /tmp/md/node_modules/github-markdown-css/github-markdown-light.css /tmp/comment.html \
        /tmp/md/node_modules/mermaid/dist/mermaid.min.js
    chromium --headless --hide-scrollbars --virtual-time-budget=5000 --window-size=990,1760 \
        --screenshot=/tmp/comment.png file:///tmp/comment.html
    cp /tmp/comment.png docs/img/pr-comment.png   # the window is the crop

docs/img/html-report.png is the same run's --promptgate-html, with the same cut done in CSS:

    sed 's#</head>#<style>section.prompt:not([data-prompt="support-triage"]){display:none}</style></head>#' \
        report.html > /tmp/trim.html
    chromium --headless --hide-scrollbars --virtual-time-budget=5000 --window-size=1100,968 \
        --screenshot=docs/img/html-report.png file:///tmp/trim.html

The run: `pytest examples --promptgate-no-history --promptgate-markdown report.md
--promptgate-html report.html` (add `--promptgate-replay --promptgate-cache-dir DIR` to redraw
from a recorded run without calling the model).

markdown-it-py with tables and strikethrough enabled is GitHub-flavoured for everything the
reports use (tables, details/summary blocks, code spans, links); raw HTML is passed through
as GitHub does for its allowed tags.
"""

from __future__ import annotations

import sys
from pathlib import Path

from markdown_it import MarkdownIt  # type: ignore[import-not-found]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><style>{css}
body {{ margin: 0; background: #ffffff; }}
.comment {{ width: 940px; margin: 16px; border: 1px solid #d0d7de; border-radius: 6px; }}
.comment-header {{ background: #f6f8fa; border-bottom: 1px solid #d0d7de; padding: 8px 16px;
  font: 14px -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; color: #57606a; }}
.comment-header b {{ color: #1f2328; }}
.markdown-body {{ padding: 16px; }}
</style></head>
<body><div class="comment"><div class="comment-header"><b>github-actions</b> bot commented</div>
<div class="markdown-body">{body}</div></div>{mermaid}</body></html>
"""
# GitHub draws ```mermaid blocks as diagrams; with mermaid.min.js given, so does this page.
MERMAID = """<script src="{src}"></script><script>
for (const code of document.querySelectorAll("pre > code.language-mermaid")) {{
  const div = document.createElement("div"); div.className = "mermaid"; div.textContent = code.textContent;
  code.parentElement.replaceWith(div);
}}
mermaid.initialize({{startOnLoad: false, theme: "default"}}); mermaid.run();
</script>"""


def main(markdown_path: str, css_path: str, out_path: str, mermaid_js: str = "") -> None:
    renderer = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    body = renderer.render(Path(markdown_path).read_text(encoding="utf-8"))
    css = Path(css_path).read_text(encoding="utf-8")
    script = MERMAID.format(src=Path(mermaid_js).resolve().as_uri()) if mermaid_js else ""
    Path(out_path).write_text(PAGE.format(css=css, body=body, mermaid=script), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:5])

"""What a day report says, apart from how its charts are drawn: the page with each chart's
SVG taken out, and the words and numbers each chart writes (its texts, counted)."""

from __future__ import annotations

import re
from typing import Any

_FIGURE = re.compile(r'<figure id="([^"]+)">(.*?)</figure>', re.S)
_TEXT = re.compile(r"<text\b[^>]*>(.*?)</text>", re.S)


def content(html: str) -> dict[str, Any]:
    """``{"page": the page without its SVG, "texts": {figure id: sorted texts}}``."""
    texts = {fid: sorted(_TEXT.findall(svg)) for fid, svg in _FIGURE.findall(html)}
    page = _FIGURE.sub(lambda m: f'<figure id="{m.group(1)}"></figure>', html)
    return {"page": page, "texts": texts}

"""The scaffolding of a self-contained HTML report page (single reports and the family index): the head with its style
and the image check a headless browser reads back, figures embedded as base64 PNG, "In short" list items."""

from __future__ import annotations

import base64
import html

__all__ = ["page_start", "figure_html", "html_list_item"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;\
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em} th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f5f8} td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.2em 0} figure img{max-width:100%;height:auto;border:1px solid #eee} figcaption{font-size:.9em;color:#555}
.meta{color:#666;font-size:.9em} code{background:#f3f3f3;padding:0 .2em} li{margin:.3em 0}
li.warn{color:#8a1c00;font-weight:600}
"""

# On load, record in the DOM whether every image decoded (a headless browser test reads it back).
_CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (im) { return im.complete && im.naturalWidth > 0; });
  document.body.setAttribute("data-images-total", String(imgs.length));
  document.body.setAttribute("data-images-loaded", String(ok.length));
  document.body.setAttribute("data-report-status", imgs.length > 0 && ok.length === imgs.length ? "ok" : "broken");
});
"""


def page_start(title: str) -> list[str]:
    """The opening of a self-contained report page: head (style, the image check), body tag, heading."""
    e = html.escape
    return ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{e(title)}</title><style>{_CSS}</style>",
            f"<script>{_CHECK_SCRIPT}</script></head>", '<body data-report-status="loading">', f"<h1>{e(title)}</h1>"]


def figure_html(name: str, png: bytes, caption: str) -> str:
    """A figure embedded as a base64 PNG data URI, with its caption."""
    e = html.escape
    b64 = base64.b64encode(png).decode("ascii")
    return (f'<figure id="fig-{e(name)}"><img src="data:image/png;base64,{b64}" alt="{e(name)}">'
            f"<figcaption>{e(caption)}</figcaption></figure>")


def html_list_item(text: str) -> str:
    """A list item of "In short"; a warning stands out."""
    cls = ' class="warn"' if text.startswith("WARNING") else ""
    return f"<li{cls}>{html.escape(text)}</li>"

"""The HTML pieces every page is made of (run reports, studies, sweeps, comparisons, audits): one inline style,
figures as data URIs, tables, and a self-contained page."""

from __future__ import annotations

import base64
import html

from ..plots import png_bytes

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.grid{display:flex;flex-wrap:wrap;gap:1em}
img{max-width:520px;border:1px solid #eee}img.thumb{max-width:112px}
td.example{text-align:left;max-width:480px}pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}
.note{color:#666;font-size:.9em}
"""


def figure_to_data_uri(fig) -> str:
    png = fig if isinstance(fig, bytes) else png_bytes(fig)  # bytes: an already rendered PNG
    return "data:image/png;base64," + base64.b64encode(png).decode()


def page(title: str, note_html: str, sections: list[tuple[str, str]]) -> str:
    """One self-contained HTML page (inline style and images, nothing fetched): run reports, studies, comparisons."""
    body = "".join(f"<h2>{html.escape(heading)}</h2>{content}" for heading, content in sections)
    title = html.escape(title)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{_STYLE}</style>"
            f"</head><body><h1>{title}</h1><p class='note'>{note_html}</p>{body}</body></html>")


def figures_html(figures: list[tuple[str, object]]) -> str:
    """Figures (matplotlib or PNG bytes) as captioned inline images in a grid."""
    return '<div class="grid">' + "".join(
        f'<figure><img alt="{html.escape(caption)}" src="{figure_to_data_uri(fig)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>" for caption, fig in figures) + "</div>"


def table_html(header: list[str], rows: list[list]) -> str:
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"

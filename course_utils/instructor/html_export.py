"""A run folder that reads anywhere: the executed notebooks' HTML pages load MathJax from the
run folder (not a CDN), and markdown images of local files are embedded as cell attachments."""

from __future__ import annotations

import base64
import os
import re
import shutil
import urllib.parse
from pathlib import Path

import nbformat

from course_utils.atomic import atomic_write_text
from course_utils.paths import PROJECT_ROOT


def export_html(executed: Path, html: Path) -> None:
    """Write the executed notebook as a standalone HTML page (atomically).

    MathJax comes from the run folder's ``mathjax/`` (``copy_mathjax``), by a relative URL, so
    formulas render offline and after the folder moves. require.js (for widget and JavaScript
    outputs, which the course notebooks do not have) is left out rather than fetched from a CDN.
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(mathjax_url=MATHJAX_URL, require_js_url="data:text/javascript,")
    body, _ = exporter.from_filename(str(executed))
    atomic_write_text(html, body)


MATHJAX_DIR = "mathjax"
#: HTML-CSS output with the STIX-Web fonts: the combination jupyter-server-mathjax ships.
MATHJAX_URL = f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,course"
#: The files of jupyter-server-mathjax's MathJax 2.7 that this configuration loads, or may load
#: on demand (TeX extensions, menus): about 3 MB, out of 12 MB (no SVG output, accessibility
#: explorer or translations).
MATHJAX_FILES = (
    "MathJax.js", "LICENSE", "config/TeX-AMS-MML_HTMLorMML-full.js", "config/Safe.js",
    "extensions/*.js", "extensions/TeX/**/*", "extensions/HTML-CSS/*", "jax/input/TeX/*",
    "jax/element/**/*", "jax/output/HTML-CSS/**/*", "fonts/HTML-CSS/STIX-Web/woff/**/*",
    "localization/en/*",
)
#: config/course.js: only the STIX-Web web fonts are shipped; never look for TeX fonts.
MATHJAX_CONFIG = """MathJax.Hub.Config({
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null}
});
MathJax.Ajax.loadComplete("[MathJax]/config/course.js");
"""


def copy_mathjax(run_folder: Path) -> Path:
    """Copy the MathJax files the HTML pages load into ``run_folder/mathjax/``; return it."""
    import jupyter_server_mathjax

    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    target = run_folder / MATHJAX_DIR
    for pattern in MATHJAX_FILES:
        for path in static.glob(pattern):
            if path.is_file():
                destination = target / path.relative_to(static)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
    atomic_write_text(target / "config" / "course.js", MATHJAX_CONFIG)
    return target


#: ``![alt](src "title")`` in markdown; src without spaces (as Jupyter writes it).
MARKDOWN_IMAGE = re.compile(r'!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)(?P<title>\s+"[^"]*")?\)')
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif"}


def local_image(src: str, source_dir: Path, run_figures: Path) -> Path | None:
    """The file a relative markdown image link points to, or None (a URL, absolute, missing).

    Resolved from the source notebook's folder; a file under the project's ``figures/`` is
    taken from the run's own ``figures/`` when the run wrote it (the figure of this run).
    """
    src = urllib.parse.unquote(src)
    if urllib.parse.urlparse(src).scheme or os.path.isabs(src) \
            or Path(src).suffix.lower() not in IMAGE_TYPES:
        return None
    path = (source_dir / src).resolve()
    candidates = []
    for figures in {PROJECT_ROOT / "figures", source_dir.resolve().parent / "figures"}:
        if path.is_relative_to(figures):
            candidates.append(run_figures / path.relative_to(figures))
    candidates.append(path)
    return next((c for c in candidates if c.is_file()), None)


def embed_images(executed: Path, source_dir: Path, run_figures: Path) -> int:
    """Embed markdown images of local files as cell attachments in ``executed``; return how many.

    ``![alt](../figures/x.png)`` becomes ``![alt](attachment:x.png)`` with the PNG in the cell's
    ``attachments``, so the .ipynb and its HTML show it wherever the run folder is moved.
    """
    nb = nbformat.read(executed, as_version=4)
    count = sum(_embed_cell_images(cell, source_dir, run_figures)
                for cell in nb.cells if cell.cell_type == "markdown")
    if count:
        atomic_write_text(executed, nbformat.writes(nb))
    return count


def _embed_cell_images(cell: nbformat.NotebookNode, source_dir: Path, run_figures: Path) -> int:
    """Rewrite one markdown cell's local image links to attachments; return how many."""
    attachments = dict(cell.get("attachments", {}))
    count = 0

    def attach(match: re.Match) -> str:
        nonlocal count
        path = local_image(match["src"], source_dir, run_figures)
        if path is None:
            return match[0]
        mime = IMAGE_TYPES[path.suffix.lower()]
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        name = path.name
        if attachments.get(name, {}).get(mime, data) != data:  # another file, same name
            name = f"{len(attachments)}_{name}"
        attachments[name] = {mime: data}
        count += 1
        return f"![{match['alt']}](attachment:{name}{match['title'] or ''})"

    cell.source = MARKDOWN_IMAGE.sub(attach, cell.source)
    if count:
        cell["attachments"] = attachments
    return count

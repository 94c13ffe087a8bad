"""Sphinx extension: write each inline <script> of a page once.

Sphinx 7.4 registers a script added with ``app.add_js_file(None, body=...)`` after the builder
started twice, once with the file name ``None`` (at once) and once with ``""`` (when writing),
so its de-duplication misses it. sphinx-thebe 0.3.1 adds ``const THEBE_JS_URL = ...`` this way,
and every page of the book then logs "Identifier 'THEBE_JS_URL' has already been declared".

Loaded by ``_config.yml``::

    sphinx:
      local_extensions:
        sphinx_dedupe_js: tools/
"""

from __future__ import annotations

from typing import Any


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple] = set()
    unique = []
    for js in scripts:
        attrs = getattr(js, "attributes", {})
        key = (getattr(js, "filename", js) or "", getattr(js, "priority", 0),
               tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique  # in place: later handlers may still add page scripts to this list


def setup(app) -> dict[str, Any]:
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

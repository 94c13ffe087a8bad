"""Change the repository address everywhere: ``make set-repo URL=https://github.com/ORG/REPO``.

``repository.url`` in ``_config.yml`` is the single source of the address: the Colab launch
buttons are built from it, and every chapter's setup cell (``tools/setup_cell.py``) installs
``pncutils`` from it. This script rewrites ``_config.yml`` and then the setup cell of every
notebook in ``book/`` (the notebooks are plain JSON; their other cells are untouched).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import setup_cell  # noqa: E402

URL_PATTERN = re.compile(r"^https://[A-Za-z0-9.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?(\.git)?$")


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def set_config_url(root: Path, url: str) -> None:
    """Replace ``repository.url`` in ``root/_config.yml``, keeping its comments and layout.

    The file is parsed with PyYAML before and after: the value replaced is the one the parser
    reads as ``repository.url`` (on the line PyYAML reports), and the rewritten file must parse
    to the same configuration with only that value changed, or nothing is written.
    """
    path = root / "_config.yml"
    text = path.read_text()
    before = yaml.safe_load(text)
    node = yaml.compose(text)
    value = None
    if isinstance(node, yaml.MappingNode):
        repo = next((v for k, v in node.value if k.value == "repository"), None)
        if isinstance(repo, yaml.MappingNode):
            value = next((v for k, v in repo.value if k.value == "url"), None)
    if not isinstance(value, yaml.ScalarNode) or value.start_mark.line != value.end_mark.line:
        raise ValueError(f"{path} has no single-line repository.url to replace")
    lines = text.splitlines(keepends=True)
    i, start, end = value.start_mark.line, value.start_mark.column, value.end_mark.column
    lines[i] = lines[i][:start] + url + lines[i][end:]
    new = "".join(lines)
    after = yaml.safe_load(new)
    before["repository"]["url"] = url
    if after != before:
        raise ValueError(f"rewriting repository.url in {path} changed more than that value")
    _atomic_write(path, new)


def update_notebooks(root: Path) -> list[Path]:
    """Rewrite the first code cell of every ``book/*.ipynb`` to the current setup cell."""
    source = setup_cell.setup_cell_source()
    changed = []
    for nb_path in sorted((root / "book").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        if not code:
            continue
        lines = source.splitlines(keepends=True)
        if code[0]["source"] != lines and "".join(code[0]["source"]) != source:
            code[0]["source"] = lines
            _atomic_write(nb_path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed.append(nb_path)
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("url", help="https://HOST/ORG/REPO")
    p.add_argument("--root", default=str(setup_cell.ROOT), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not URL_PATTERN.match(args.url):
        p.error(f"not a repository URL of the form https://HOST/ORG/REPO: {args.url!r}")
    root = Path(args.root)
    setup_cell.ROOT = root
    set_config_url(root, args.url.removesuffix(".git"))
    changed = update_notebooks(root)
    sys.stdout.write(f"repository.url = {args.url}; updated {len(changed)} notebook(s)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

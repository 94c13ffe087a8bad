"""Build the coursework: ``otter assign`` every master notebook, then check the student side.

Usage (from the repository root, in the instructor environment ``.venv-assign``)::

    .venv-assign/bin/python tools/make_assignments.py            # all of assignments/hw*.ipynb
    .venv-assign/bin/python tools/make_assignments.py hw01_metrics --out /tmp/dist

For every master notebook ``assignments/<name>.ipynb`` (otter-grader 7.0.0 "assign" format:
raw cells ``# ASSIGNMENT CONFIG``, ``# BEGIN QUESTION``, ``# BEGIN SOLUTION``, ``# BEGIN TESTS``,
``# HIDDEN`` test cells) this script

1. stages a copy in ``<out>/_stage/<name>/`` with ``{{REPO_URL}}`` and ``{{VERSION}}`` replaced by
   ``repository.url`` of ``_config.yml`` and the version of ``pyproject.toml`` (the Colab install
   line), next to a generated ``autograder-requirements.txt`` (what Gradescope installs);
2. runs ``otter assign`` into ``<out>/<name>/``: ``student/<name>.ipynb`` (the notebook to hand
   out, alone: its public tests are in its metadata, ``metadata.otter.tests``, otter's default
   ``tests: files: false``) and ``autograder/`` (the solutions notebook and
   ``<name>-autograder_<timestamp>.zip`` with every test, hidden ones included, as files in
   ``tests/``). ``otter assign`` also runs the master's solutions against all tests and fails
   unless they score 100 %;
3. writes the same public tests into the student notebook's setup cell, packed into the line
   ``PUBLIC_TESTS = ""`` (JSON, zlib, base64): otter 7.0.0 reads no metadata tests in Colab
   (``otter/check/notebook.py``: ``Notebook.__init__`` wants an existing tests folder there and
   ``Notebook.check`` refuses metadata tests; the notebook is not on Colab's disk anyway), so in
   Colab the setup cell writes them to ``tests/`` and nothing has to be uploaded;
4. checks the student side and fails with a clear message otherwise: the student folder holds
   the notebook alone; no otter marker (``BEGIN SOLUTION``, ``# HIDDEN``, ...), no line of
   solution code or text of the master, no hidden test case and no line of a hidden test in the
   student notebook, its metadata tests or its Colab tests; the metadata and Colab tests are the
   master's public tests, case for case; every hidden test of the master is in the autograder
   zip; every code answer of the master is marked (an unmarked answer cell would be copied
   verbatim: pitfall P9 of the toolchain notes).

Exit status 0 when everything was built and checked, 1 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import base64
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ROOT / "assignments"
DEFAULT_OUT = ASSIGNMENTS / "dist"

#: Strings that must never reach a student file (otter's markers and our test wrapper).
FORBIDDEN_MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "# SOLUTION",
    "# HIDDEN",
    "BEGIN TESTS",
    "END TESTS",
    "ASSIGNMENT CONFIG",
    "_hidden_test",
    "{{REPO_URL}}",
    "{{VERSION}}",
)

#: Packages of the book's pinned set that the autograder needs (pins read from requirements.txt).
AUTOGRADER_PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "matplotlib", "tqdm")

#: Solution or test lines shorter than this (after stripping) are too generic to search for.
MIN_LINE_LENGTH = 12

#: The assignment of each master's setup cell that receives the packed public tests (for Colab).
COLAB_TESTS_VARIABLE = "PUBLIC_TESTS"
COLAB_TESTS_PLACEHOLDER = f'{COLAB_TESTS_VARIABLE} = ""'

_RAW_MARKER = re.compile(r"^\s*#\s*(BEGIN|END)\s+(SOLUTION|TESTS|QUESTION|PROMPT)\b", re.I)
_HIDDEN = re.compile(r"^\s*#.*\bhidden\b", re.I)
_INCELL_BEGIN = re.compile(r"^\s*#\s*BEGIN SOLUTION( NO PROMPT)?\s*$")
_INCELL_END = re.compile(r"^\s*#\s*END SOLUTION\s*$")
_SOLUTION_SUFFIX = re.compile(r"^(?P<line>.*?)\s*# ?SOLUTION( NO PROMPT)?\s*$")
_DOCTEST_PROMPT = re.compile(r"^(>>>|\.\.\.) ?", re.M)


class AssignmentError(RuntimeError):
    """A master notebook that does not build, or a student side that leaks."""


# ----------------------------------------------------------------------------------------
# reading notebooks
# ----------------------------------------------------------------------------------------


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _raw_marker(cell: dict) -> tuple[str, str] | None:
    """``("BEGIN", "SOLUTION")`` etc. for an otter raw marker cell, else None."""
    if cell["cell_type"] != "raw":
        return None
    first = _source(cell).strip().splitlines()[:1]
    m = _RAW_MARKER.match(first[0]) if first else None
    return (m.group(1).upper(), m.group(2).upper()) if m else None


def _meaningful(line: str) -> str | None:
    """The stripped line if it is specific enough to search for, else None."""
    line = line.strip()
    if line.startswith("#") or len(line) < MIN_LINE_LENGTH or not re.search(r"\w", line):
        return None
    return line


@dataclass
class Master:
    """What the checks need to know about one master notebook."""

    name: str
    path: Path
    solution_lines: set[str] = field(default_factory=set)  # code/text students must not see
    public_lines: set[str] = field(default_factory=set)  # every line outside solutions/tests
    hidden_tests: dict[str, list[str]] = field(default_factory=dict)  # question -> sources
    public_tests: dict[str, int] = field(default_factory=dict)  # question -> number of cases
    public_test_code: dict[str, list[str]] = field(default_factory=dict)  # as otter writes it
    solution_cells: list[dict] = field(default_factory=list)  # answer cells, in order
    manual: dict[str, float] = field(default_factory=dict)  # manual question -> points
    points: dict[str, float] = field(default_factory=dict)  # autograded question -> points


def _question_config(cell: dict) -> dict:
    import yaml

    text = _source(cell).strip()
    config = yaml.safe_load("\n".join(text.splitlines()[1:])) or {}
    if "name" not in config:
        raise AssignmentError(f"a '# BEGIN QUESTION' cell has no name: {text!r}")
    return config


def solution_code(source: str) -> str:
    """The answer cell's code as the solution runs it: otter's in-cell markers removed."""
    out = []
    for line in source.splitlines():
        if _INCELL_BEGIN.match(line) or _INCELL_END.match(line):
            continue
        m = _SOLUTION_SUFFIX.match(line)
        out.append(m.group("line") if m and line.strip() != "# SOLUTION" else line)
    return "\n".join(out)


def _marked_solution_lines(source: str) -> list[str]:
    """Lines of a code cell that otter strips: in-cell blocks and ``# SOLUTION`` lines."""
    lines, inside = [], False
    for line in source.splitlines():
        if _INCELL_BEGIN.match(line):
            inside = True
            continue
        if _INCELL_END.match(line):
            inside = False
            continue
        if inside:
            lines.append(line)
            continue
        m = _SOLUTION_SUFFIX.match(line)
        if m:
            text = m.group("line")
            lines.append(text)
            if "=" in text and not text.lstrip().startswith(("def ", "class ")):
                lines.append(text.split("=", 1)[1])  # the right-hand side alone
    return lines


def otter_test_code(source: str) -> str:
    """A test cell's code as otter assign stores it (``ast.unparse``), without blank lines."""
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise AssignmentError(f"a test cell is not valid Python ({err}):\n{source}") from err
    return "\n".join(line for line in ast.unparse(tree).splitlines() if line.strip())


def case_code(case: dict) -> str:
    """The code of an OK-format test case (a doctest) without its prompts and blank lines."""
    code = _DOCTEST_PROMPT.sub("", case.get("code", ""))
    return "\n".join(line for line in code.splitlines() if line.strip())


def read_master(path: Path) -> Master:
    """Parse a master notebook: solution lines, tests per question, points."""
    nb = _load(path)
    master = Master(name=path.stem, path=path)
    block: list[str] = []  # open raw blocks, innermost last
    question: dict | None = None
    for index, cell in enumerate(nb["cells"]):
        where = f"{path.name}, cell {index}"
        src = _source(cell)
        marker = _raw_marker(cell)
        if cell["cell_type"] == "raw" and src.strip().upper().startswith("# ASSIGNMENT CONFIG"):
            continue
        if marker:
            kind, what = marker
            if kind == "BEGIN":
                block.append(what)
                if what == "QUESTION":
                    question = _question_config(cell)
                    name = question["name"]
                    master.public_tests.setdefault(name, 0)
                    master.public_test_code.setdefault(name, [])
                    master.hidden_tests.setdefault(name, [])
                    target = master.manual if question.get("manual") else master.points
                    points = question.get("points", 1)
                    target[name] = float(sum(points) if isinstance(points, list) else points)
            else:
                if not block or block[-1] != what:
                    raise AssignmentError(f"{where}: '# END {what}' without '# BEGIN {what}'")
                block.pop()
                if what == "QUESTION":
                    question = None
            continue
        if "SOLUTION" in block:
            master.solution_cells.append(cell)
            if cell["cell_type"] == "markdown":
                master.solution_lines.update(filter(None, map(_meaningful, src.splitlines())))
            elif cell["cell_type"] == "code":
                marked = _marked_solution_lines(src)
                if not marked:
                    raise AssignmentError(
                        f"{where}: this answer cell has no '# BEGIN SOLUTION' / '# END SOLUTION' "
                        "comment block and no '# SOLUTION' line, so otter would copy it verbatim "
                        "into the student notebook"
                    )
                master.solution_lines.update(filter(None, map(_meaningful, marked)))
                unmarked = set(src.splitlines()) - set(marked)
                master.public_lines.update(filter(None, map(_meaningful, unmarked)))
            continue
        if "TESTS" in block:
            if cell["cell_type"] != "code" or question is None:
                raise AssignmentError(f"{where}: test cells must be code cells inside a question")
            lines = src.strip().splitlines()
            if lines and _HIDDEN.match(lines[0]):
                master.hidden_tests[question["name"]].append(src)
            else:
                master.public_tests[question["name"]] += 1
                master.public_test_code[question["name"]].append(otter_test_code(src))
                master.public_lines.update(filter(None, map(_meaningful, src.splitlines())))
                master.public_lines.update(filter(None, map(_meaningful,
                                                            otter_test_code(src).splitlines())))
            continue
        if cell["cell_type"] == "code":
            leaked = _marked_solution_lines(src)
            if leaked:
                raise AssignmentError(
                    f"{where}: solution markers outside a raw '# BEGIN SOLUTION' block are not "
                    "stripped by otter assign; wrap the cell in raw BEGIN/END SOLUTION cells"
                )
        master.public_lines.update(filter(None, map(_meaningful, src.splitlines())))
    if block:
        raise AssignmentError(f"{path.name}: unclosed raw block(s) {block}")
    # a line that is also part of the public text (a prompt, a given cell, a public test) is
    # no secret
    public_text = "\n".join(master.public_lines)
    master.solution_lines = {s for s in master.solution_lines if s not in public_text}
    if not master.solution_lines:
        raise AssignmentError(f"{path.name}: no solution found (raw '# BEGIN SOLUTION' cells?)")
    return master


def hidden_test_lines(master: Master) -> set[str]:
    """Specific lines of the hidden tests (those that are not also part of the public text), as
    written in the master and as otter assign rewrites them (``ast.unparse``)."""
    public_text = "\n".join(master.public_lines)
    lines = set()
    for sources in master.hidden_tests.values():
        for src in sources:
            for line in src.splitlines() + otter_test_code(src).splitlines():
                m = _meaningful(line)
                if m and m not in public_text and "_hidden_test" not in m:
                    lines.add(m)
    return lines


# ----------------------------------------------------------------------------------------
# staging and otter assign
# ----------------------------------------------------------------------------------------


def _repository_url() -> str:
    text = (ROOT / "_config.yml").read_text()
    m = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", text, re.M)
    if not m:
        raise AssignmentError("_config.yml has no repository.url")
    return m.group(1).removesuffix(".git")


def _version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)


def autograder_requirements() -> str:
    """What the Gradescope image installs: the book's pins (CPU torch) and pncutils."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    lines = [
        "# Generated by tools/make_assignments.py: the autograder's packages (Gradescope).",
        "--extra-index-url https://download.pytorch.org/whl/cpu",
    ]
    lines += [f"{p}=={pins[p]}" for p in AUTOGRADER_PACKAGES if p in pins]
    lines.append(f"pncutils @ git+{_repository_url()}@v{_version()}")
    return "\n".join(lines) + "\n"


def stage(master: Master, out: Path) -> Path:
    """Copy the master with its placeholders filled in; return the staged notebook's path."""
    stage_dir = out / "_stage" / master.name
    shutil.rmtree(stage_dir, ignore_errors=True)
    stage_dir.mkdir(parents=True)
    text = master.path.read_text(encoding="utf-8")
    text = text.replace("{{REPO_URL}}", _repository_url()).replace("{{VERSION}}", _version())
    staged = stage_dir / master.path.name
    staged.write_text(text, encoding="utf-8")
    (stage_dir / "autograder-requirements.txt").write_text(autograder_requirements())
    return staged


def _otter() -> list[str]:
    return [sys.executable, "-m", "otter"]


def otter_assign(staged: Path, result: Path, log: Path) -> float:
    """Run ``otter assign``; raise with the tail of its output when it fails."""
    shutil.rmtree(result, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MPLBACKEND="Agg", PYTHONHASHSEED="0")
    start = time.perf_counter()
    proc = subprocess.run([*_otter(), "assign", "--no-pdfs", str(staged), str(result)],
                          cwd=staged.parent, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        raise AssignmentError(
            f"otter assign failed for {staged.name} (exit {proc.returncode}; full log {log}):\n"
            f"{tail}"
        )
    return elapsed


# ----------------------------------------------------------------------------------------
# the public tests: in the student notebook's metadata, and packed in its setup cell for Colab
# ----------------------------------------------------------------------------------------


def pack_tests(tests: dict) -> str:
    """``{question: OK-format test}`` as one ASCII string (JSON, zlib, base64)."""
    raw = json.dumps(tests, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def unpack_tests(packed: str) -> dict:
    """The inverse of :func:`pack_tests` (what the setup cell does in Colab)."""
    return json.loads(zlib.decompress(base64.b64decode(packed)))


def metadata_tests(nb: dict) -> dict:
    """The public tests that otter reads from a student notebook: ``metadata.otter.tests``."""
    otter_meta = nb.get("metadata", {}).get("otter", {})
    tests = otter_meta.get("tests")
    if not isinstance(tests, dict) or not tests:
        raise AssignmentError("the student notebook has no tests in its metadata (metadata.otter."
                              "tests): use 'tests: files: false' in the ASSIGNMENT CONFIG")
    if otter_meta.get("OK_FORMAT") is not True:
        raise AssignmentError("the student notebook's metadata tests are not in the OK format")
    return tests


def _setup_assignments(nb: dict) -> list[tuple[int, ast.Assign]]:
    """(cell index, node) of every ``PUBLIC_TESTS = ...`` at the top level of a code cell."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        src = _source(cell)
        if cell["cell_type"] != "code" or COLAB_TESTS_VARIABLE not in src:
            continue
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == COLAB_TESTS_VARIABLE
                for target in node.targets
            ):
                found.append((index, node))
    return found


def colab_tests(nb: dict) -> dict | None:
    """The public tests packed in the setup cell (what it writes to tests/ in Colab), or None
    while the placeholder is empty; raise when there is no single such assignment."""
    found = _setup_assignments(nb)
    if len(found) != 1:
        raise AssignmentError(f"expected one '{COLAB_TESTS_PLACEHOLDER}' line in the setup cell, "
                              f"found {len(found)}")
    try:
        value = ast.literal_eval(found[0][1].value)
        return unpack_tests(value) if value else None
    except (ValueError, TypeError, zlib.error) as err:  # binascii and JSON errors are ValueErrors
        raise AssignmentError(f"{COLAB_TESTS_VARIABLE} in the setup cell is not a packed set of "
                              f"tests ({err})") from err


def embed_colab_tests(student_nb: Path) -> dict:
    """Pack the student notebook's metadata tests into its setup cell's ``PUBLIC_TESTS = ""``
    (otter 7.0.0 reads no metadata tests in Colab; the setup cell writes these to tests/ there).
    Return the tests."""
    import nbformat

    nb = nbformat.read(student_nb, as_version=4)
    tests = metadata_tests(nb)
    found = _setup_assignments(nb)
    if len(found) != 1:
        raise AssignmentError(f"{student_nb.name}: expected one '{COLAB_TESTS_PLACEHOLDER}' line "
                              f"in the setup cell, found {len(found)}")
    index, node = found[0]
    lines = nb.cells[index].source.split("\n")
    line = lines[node.lineno - 1]
    if node.lineno != node.end_lineno or not line.startswith(COLAB_TESTS_PLACEHOLDER):
        raise AssignmentError(f"{student_nb.name}: the setup cell must hold the line "
                              f"'{COLAB_TESTS_PLACEHOLDER}  # comment' (empty in the master)")
    comment = line[len(COLAB_TESTS_PLACEHOLDER):].strip()
    packed = pack_tests(tests)
    width = 96
    chunks = [f'    "{packed[i:i + width]}"' for i in range(0, len(packed), width)]
    lines[node.lineno - 1:node.lineno] = [
        f"{COLAB_TESTS_VARIABLE} = ({'  ' + comment if comment else ''}", *chunks, ")"]
    nb.cells[index].source = "\n".join(lines)
    nbformat.write(nb, student_nb)
    return tests


# ----------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------


def ok_test(text: str, where: str) -> dict:
    """The ``test`` dict of an OK-format test file's text (executed in an empty namespace)."""
    namespace: dict = {}
    exec(compile(text, where, "exec"), namespace)  # noqa: S102 (our own files)
    if not namespace.get("OK_FORMAT", False) or "test" not in namespace:
        raise AssignmentError(f"{where} is not an OK-format test file")
    return namespace["test"]


def _cases(test: dict) -> list[dict]:
    return [case for suite in test.get("suites", []) for case in suite.get("cases", [])]


def _tests_text(tests: dict) -> str:
    """The code of every case of ``{question: test}``, prompts removed (for the line checks)."""
    return "\n".join(case_code(case) for test in tests.values() for case in _cases(test))


def autograder_zip(result: Path, name: str) -> Path:
    zips = sorted((result / "autograder").glob(f"{name}-autograder_*.zip"))
    if len(zips) != 1:
        raise AssignmentError(f"expected one autograder zip in {result / 'autograder'}, got {zips}")
    return zips[0]


def _check_public_tests(master: Master, tests: dict, where: str) -> list[str]:
    """Problems of ``{question: test}`` against the master's public tests, case for case."""
    problems = []
    for question, test in tests.items():
        if test.get("name") != question:
            problems.append(f"{where}: test {question!r} is named {test.get('name')!r}")
        if any(case.get("hidden") for case in _cases(test)):
            problems.append(f"{where}: question {question} contains hidden test cases")
    for question in sorted(set(tests) | set(master.public_tests)):
        expected = master.public_test_code.get(question, [])
        got = [case_code(case) for case in _cases(tests.get(question, {}))]
        if len(got) != len(expected):
            problems.append(f"{where}: question {question}: {len(got)} public test case(s) for "
                            f"students, {len(expected)} in the master")
        elif got != expected:
            problems.append(f"{where}: question {question}: the public test cases differ from "
                            "the master's")
    return problems


def check_student(master: Master, result: Path) -> dict:
    """Check the student side of one built assignment; return a summary."""
    student_nb = result / "student" / f"{master.name}.ipynb"
    if not student_nb.exists():
        raise AssignmentError(f"otter assign wrote no student notebook {student_nb}")
    for path in sorted((result / "student").rglob("*")):
        if path != student_nb:  # e.g. a tests/ folder: the notebook must be enough
            raise AssignmentError(f"unexpected file in the student folder: {path} (the student "
                                  "notebook must hold its public tests in its metadata)")
    nb = _load(student_nb)
    problems = []
    try:
        tests = metadata_tests(nb)
    except AssignmentError as err:
        problems.append(f"{student_nb.name}: {err}")
        tests = {}
    try:
        packed = colab_tests(nb)
    except AssignmentError as err:
        problems.append(f"{student_nb.name}: {err}")
        packed = {}
    if packed is None:
        problems.append(f"{student_nb.name}: the setup cell's {COLAB_TESTS_PLACEHOLDER} was not "
                        "filled in (the tests for Colab)")
        packed = {}
    elif packed != tests:
        problems.append(f"{student_nb.name}: the tests packed for Colab differ from the "
                        "notebook's metadata tests")
    problems += _check_public_tests(master, tests, f"{student_nb.name} (metadata tests)")
    if packed and packed != tests:
        problems += _check_public_tests(master, packed, f"{student_nb.name} (Colab tests)")

    texts = {
        "cells": "\n".join(_source(c) for c in nb["cells"]),
        "metadata": json.dumps(nb.get("metadata", {})),
        "metadata tests": _tests_text(tests),
        "Colab tests": _tests_text(packed),
    }
    for what, text in texts.items():
        where = f"{student_nb.name} ({what})"
        for marker in FORBIDDEN_MARKERS:
            if marker in text:
                problems.append(f"{where}: contains the marker {marker!r}")
        for line in sorted(master.solution_lines):
            if line in text:
                problems.append(f"{where}: contains the solution line {line!r}")
        for line in sorted(hidden_test_lines(master)):
            if line in text:
                problems.append(f"{where}: contains the hidden-test line {line!r}")
    if any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"):
        problems.append(f"{student_nb.name}: has cell outputs (they may show solutions)")
    if _repository_url() not in texts["cells"]:
        problems.append(f"{student_nb.name}: the Colab install line lacks {_repository_url()}")
    if f'"{master.name}.ipynb"' not in texts["cells"]:
        problems.append(f"{student_nb.name}: the setup cell does not name the notebook "
                        f'"{master.name}.ipynb" (NOTEBOOK = ...)')

    # every hidden test in the autograder zip
    zpath = autograder_zip(result, master.name)
    hidden = {}
    with zipfile.ZipFile(zpath) as zf:
        for info in zf.infolist():
            if info.filename.startswith("tests/") and info.filename.endswith(".py"):
                test = ok_test(zf.read(info).decode(), f"{zpath.name}:{info.filename}")
                hidden[test["name"]] = sum(bool(c.get("hidden")) for c in _cases(test))
    for question, sources in master.hidden_tests.items():
        if hidden.get(question, 0) != len(sources):
            problems.append(f"question {question}: {hidden.get(question, 0)} hidden case(s) in "
                            f"{zpath.name}, {len(sources)} in the master")
    if problems:
        raise AssignmentError(
            f"{master.name}: the student side is not clean:\n  - " + "\n  - ".join(problems)
        )
    return {
        "name": master.name,
        "questions": len(master.points) + len(master.manual),
        "autograded_points": sum(master.points.values()),
        "manual_points": sum(master.manual.values()),
        "public_cases": sum(master.public_tests.values()),
        "hidden_cases": sum(len(v) for v in master.hidden_tests.values()),
        "student_notebook": str(student_nb),
        "autograder_zip": str(zpath),
    }


# ----------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------


def masters(names: list[str] | None = None) -> list[Path]:
    found = sorted(ASSIGNMENTS.glob("hw*.ipynb"))
    if names:
        wanted = {n.removesuffix(".ipynb") for n in names}
        missing = wanted - {p.stem for p in found}
        if missing:
            raise AssignmentError(f"no master notebook assignments/{sorted(missing)[0]}.ipynb")
        found = [p for p in found if p.stem in wanted]
    if not found:
        raise AssignmentError(f"no master notebooks assignments/hw*.ipynb in {ASSIGNMENTS}")
    return found


def build_one(path: Path, out: Path) -> dict:
    master = read_master(path)
    staged = stage(master, out)
    result = out / master.name
    seconds = otter_assign(staged, result, out / "_stage" / f"{master.name}.log")
    embed_colab_tests(result / "student" / f"{master.name}.ipynb")
    summary = check_student(master, result)
    summary["assign_seconds"] = round(seconds, 1)
    return summary


def build(names: list[str] | None = None, out: Path = DEFAULT_OUT, jobs: int = 1) -> list[dict]:
    """Build and check the named assignments (all by default); return one summary each."""
    try:
        import otter  # noqa: F401
    except ImportError as err:
        raise AssignmentError(
            "otter-grader is not installed in this Python: run this script with the instructor "
            "environment, python3.11 -m venv .venv-assign && "
            ".venv-assign/bin/pip install -r assignments/requirements.txt -e ."
        ) from err
    out.mkdir(parents=True, exist_ok=True)
    paths = masters(names)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        summaries = list(pool.map(lambda p: build_one(p, out), paths))
    (out / "summary.json").write_text(json.dumps(summaries, indent=1) + "\n")
    return summaries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="assignments to build (default: all hw*)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="otter assign runs in parallel (each executes a notebook; "
                        "default: 2 or the number of CPUs if smaller)")
    args = parser.parse_args(argv)
    try:
        summaries = build(args.names or None, args.out.resolve(), args.jobs)
    except AssignmentError as err:
        sys.stderr.write(f"make_assignments: {err}\n")
        return 1
    for s in summaries:
        sys.stdout.write(
            f"{s['name']}: {s['questions']} questions, {s['autograded_points']:g} autograded + "
            f"{s['manual_points']:g} manual points, {s['public_cases']} public / "
            f"{s['hidden_cases']} hidden test cases, otter assign {s['assign_seconds']} s\n"
            f"    hand out {s['student_notebook']}\n    grade with {s['autograder_zip']}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

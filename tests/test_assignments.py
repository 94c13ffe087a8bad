"""The coursework: otter-grader masters in assignments/, built by tools/make_assignments.py.

The otter tests run the instructor environment's otter (``.venv-assign``, installed by
``make assignments``/``make test``); they are skipped only when ``.venv-assign/bin/otter`` is
missing. ``otter grade`` needs Docker, so submissions are graded with ``otter run``, which runs
the autograder zip in the instructor environment. Whole file: about 2–3 minutes on 2 CPU cores
(each ``otter assign`` or ``otter run`` executes a notebook; two run at a time).
"""

from __future__ import annotations

import concurrent.futures
import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSIGN_VENV = ROOT / ".venv-assign"
OTTER = ASSIGN_VENV / "bin" / "otter"
ASSIGN_PYTHON = ASSIGN_VENV / "bin" / "python"
NAMES = ("hw01_metrics", "hw02_construction", "hw03_hybrid")

sys.path.insert(0, str(ROOT / "tools"))
import make_assignments as ma  # noqa: E402

needs_otter = pytest.mark.skipif(
    not OTTER.exists(),
    reason=f"{OTTER.relative_to(ROOT)} is missing: create the instructor environment with "
    "`python3.11 -m venv .venv-assign && .venv-assign/bin/pip install -r "
    "assignments/requirements.txt -e .` (make test does it)",
)

ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
           MPLBACKEND="Agg", PYTHONHASHSEED="0")

#: Plausible mistakes, applied to the master's solution code: (old, new, questions that must
#: lose points). Each `old` must occur exactly once in the answer cells.
MISTAKES = {
    "hw01_metrics": {
        "sigma_w_over_n_minus_1": (
            "deviations.T @ deviations / H.shape[0]",
            "deviations.T @ deviations / (H.shape[0] - 1)",
            {"q1", "q3"},
        ),
        "calls_pncutils_metrics": (
            "return float(np.trace(within_class_cov(H, y)) / np.trace(between_class_cov(H, y)))",
            "return pnc.metrics.compression(H, y)",
            {"q3"},
        ),
        "centred_means_in_D": (
            "unit = M / np.linalg.norm(M, axis=1, keepdims=True)",
            "M = M - M.mean(axis=0)\n    unit = M / np.linalg.norm(M, axis=1, keepdims=True)",
            {"q4"},
        ),
    },
    "hw02_construction": {
        "forgot_alpha": (
            "return np.linalg.solve(gram, Y).T @ X / alpha",
            "return np.linalg.solve(gram, Y).T @ X",
            {"q1", "q4"},  # q3 is checked against the student's own W*: no double penalty
        ),
    },
    "hw03_hybrid": {
        "linear_part_off_by_one": (
            "C_linear = C[num_nonlinear:]",
            "C_linear = C[num_nonlinear + 1:]",
            {"q3"},
        ),
    },
}


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------


def _source(cell: dict) -> str:
    return ma._source(cell)


def _masters() -> dict[str, ma.Master]:
    return {name: ma.read_master(ROOT / "assignments" / f"{name}.ipynb") for name in NAMES}


def fill_student_notebook(student: Path, master: ma.Master, target: Path,
                          mistake: tuple[str, str, set] | None = None) -> Path:
    """The student notebook with every answer cell replaced by the master's solution (and, with
    `mistake`, one plausible error): a realistic submission."""
    nb = json.loads(student.read_text())
    answers = [c for c in nb["cells"] if "otter_answer_cell" in c["metadata"].get("tags", [])]
    assert len(answers) == len(master.solution_cells), "answer cells and master solutions differ"
    replaced = 0
    for cell, solution in zip(answers, master.solution_cells, strict=True):
        assert cell["cell_type"] == solution["cell_type"]
        text = _source(solution)
        if cell["cell_type"] == "code":
            text = ma.solution_code(text)
            if mistake is not None:
                replaced += text.count(mistake[0])
                text = text.replace(mistake[0], mistake[1])
        cell["source"] = text
    if mistake is not None:
        assert replaced == 1, f"the mistake {mistake[0]!r} matched {replaced} times"
    target.write_text(json.dumps(nb, indent=1))
    return target


def otter_run(zip_path: Path, submission: Path) -> dict[str, tuple[float, float]]:
    """Grade one submission with ``otter run``; return {question: (score, max_score)}."""
    out = submission.parent / f"{submission.stem}-results"
    out.mkdir()
    proc = subprocess.run([str(OTTER), "run", "--no-logo", "-a", str(zip_path), "-o", str(out),
                           str(submission)], capture_output=True, text=True, env=ENV,
                          cwd=submission.parent, timeout=300)
    results = out / "results.json"
    assert proc.returncode == 0 and results.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    tests = json.loads(results.read_text())["tests"]
    return {t["name"]: (float(t["score"]), float(t["max_score"])) for t in tests if "score" in t}


def total(scores: dict[str, tuple[float, float]]) -> tuple[float, float]:
    return sum(s for s, _ in scores.values()), sum(m for _, m in scores.values())


# ----------------------------------------------------------------------------------------
# fixtures: build once (otter assign), grade every submission once (otter run)
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``tools/make_assignments.py`` into a temporary folder: (out, {name: summary})."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([str(ASSIGN_PYTHON), str(ROOT / "tools" / "make_assignments.py"),
                           "--out", str(out), "--jobs", "2"], capture_output=True, text=True,
                          env=ENV, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summaries = {s["name"]: s for s in json.loads((out / "summary.json").read_text())}
    return out, summaries


@pytest.fixture(scope="module")
def graded(built, tmp_path_factory):
    """{(name, kind): scores} for the master's solutions, a correct and wrong submissions."""
    out, summaries = built
    masters = _masters()
    jobs = {}
    for name in NAMES:
        zip_path = Path(summaries[name]["autograder_zip"])
        student = out / name / "student" / f"{name}.ipynb"
        work = tmp_path_factory.mktemp(f"sub-{name}")
        # the master's solutions, as otter formats them for the autograder
        solution = work / f"{name}.ipynb"
        shutil.copy(out / name / "autograder" / f"{name}.ipynb", solution)
        jobs[name, "master"] = (zip_path, solution)
        jobs[name, "correct"] = (zip_path, fill_student_notebook(
            student, masters[name], work / "correct.ipynb"))
        blank = work / "blank.ipynb"  # the student notebook as handed out, nothing answered
        shutil.copy(student, blank)
        jobs[name, "blank"] = (zip_path, blank)
        for label, mistake in MISTAKES[name].items():
            jobs[name, label] = (zip_path, fill_student_notebook(
                student, masters[name], work / f"{label}.ipynb", mistake))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {key: pool.submit(otter_run, *args) for key, args in jobs.items()}
        scores = {key: f.result() for key, f in futures.items()}
    for (name, kind), result in scores.items():  # shown with pytest -s
        print(f"{name:18} {kind:24} {total(result)[0]:g} / {total(result)[1]:g}  "
              + " ".join(f"{q}={s:g}/{m:g}" for q, (s, m) in result.items()))
    return scores


# ----------------------------------------------------------------------------------------
# tests that need no otter (the masters and the checker)
# ----------------------------------------------------------------------------------------


def test_three_masters_with_public_hidden_and_manual_questions():
    masters = _masters()
    for name, m in masters.items():
        assert m.points, f"{name}: no autograded question"
        for question in m.points:
            assert m.public_tests[question] >= 1, f"{name} {question}: no public test"
            assert m.hidden_tests[question], f"{name} {question}: no hidden test"
    assert masters["hw03_hybrid"].manual, "hw03 needs a written, manually graded question"


def test_requirements_file_extends_the_book_pins():
    lines = (ROOT / "assignments" / "requirements.txt").read_text().splitlines()
    assert "-r ../requirements.txt" in lines and "otter-grader==7.0.0" in lines


def test_checker_rejects_an_unmarked_answer_cell(tmp_path):
    nb = json.loads((ROOT / "assignments" / "hw01_metrics.ipynb").read_text())
    for cell in nb["cells"]:  # drop the in-cell markers of the first answer: otter would copy it
        if cell["cell_type"] == "code" and "# BEGIN SOLUTION" in _source(cell):
            cell["source"] = ma.solution_code(_source(cell))
            break
    bad = tmp_path / "hw09_bad.ipynb"
    bad.write_text(json.dumps(nb))
    with pytest.raises(ma.AssignmentError, match="copy it verbatim"):
        ma.read_master(bad)


def test_autograder_requirements_pin_cpu_torch_and_pncutils():
    text = ma.autograder_requirements()
    assert "torch==" in text and "download.pytorch.org/whl/cpu" in text
    assert f"pncutils @ git+{ma._repository_url()}@v{ma._version()}" in text


# ----------------------------------------------------------------------------------------
# otter assign: solutions pass, the student side is clean
# ----------------------------------------------------------------------------------------


@needs_otter
def test_make_assignments_builds_every_master(built):
    out, summaries = built
    assert set(summaries) == set(NAMES)
    for name, s in summaries.items():
        assert Path(s["autograder_zip"]).exists() and Path(s["student_zip"]).exists()
        assert s["hidden_cases"] > 0 and s["public_cases"] > 0, name


@needs_otter
@pytest.mark.parametrize("name", NAMES)
def test_student_notebook_has_no_solution_and_no_hidden_test(built, name, tmp_path):
    out, _ = built
    master = ma.read_master(ROOT / "assignments" / f"{name}.ipynb")
    student_dir = out / name / "student"
    text = (student_dir / f"{name}.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "# HIDDEN", "BEGIN TESTS", "_hidden_test"):
        assert marker not in text, marker
    nb = json.loads(text)
    student_text = "\n".join(_source(c) for c in nb["cells"])
    public_text = "\n".join(master.public_lines)
    for cell in master.solution_cells:  # every specific solution line is gone
        src = _source(cell)
        lines = ma._marked_solution_lines(src) if cell["cell_type"] == "code" else src.splitlines()
        for line in lines:
            line = line.strip()
            if len(line) >= 20 and line not in public_text:
                assert line not in student_text, f"solution line in the student notebook: {line}"
    for path in (student_dir / "tests").glob("*.py"):
        test = ma.read_test_file(path)
        assert not any(c["hidden"] for c in ma._cases(test)), path.name
    with pytest.raises(ma.AssignmentError):  # and the checker would notice a leak
        leaky = copy.deepcopy(nb)
        leaky["cells"].append({"cell_type": "markdown", "metadata": {}, "id": "leak",
                               "source": sorted(master.solution_lines)[0]})
        shutil.copytree(out / name, tmp_path / name)
        (tmp_path / name / "student" / f"{name}.ipynb").write_text(json.dumps(leaky))
        ma.check_student(master, tmp_path / name)


@needs_otter
def test_checker_notices_a_hidden_case_in_the_student_tests(built, tmp_path):
    out, _ = built
    name = "hw01_metrics"
    shutil.copytree(out / name, tmp_path / name)
    zip_tests = tmp_path / name / "autograder" / "tests" / "q1.py"  # all cases, hidden included
    shutil.copy(zip_tests, tmp_path / name / "student" / "tests" / "q1.py")
    master = ma.read_master(ROOT / "assignments" / f"{name}.ipynb")
    with pytest.raises(ma.AssignmentError, match="hidden"):
        ma.check_student(master, tmp_path / name)


# ----------------------------------------------------------------------------------------
# otter run: full marks for correct work, less for mistakes
# ----------------------------------------------------------------------------------------


@needs_otter
@pytest.mark.parametrize("name", NAMES)
def test_master_solutions_score_full_marks(graded, built, name):
    score, maximum = total(graded[name, "master"])
    assert maximum == built[1][name]["autograded_points"]
    assert score == maximum, graded[name, "master"]


@needs_otter
@pytest.mark.parametrize("name", NAMES)
def test_correct_submission_scores_full_marks(graded, built, name):
    score, maximum = total(graded[name, "correct"])
    assert maximum == built[1][name]["autograded_points"]
    assert score == maximum, graded[name, "correct"]


@needs_otter
@pytest.mark.parametrize("name", NAMES)
def test_blank_submission_scores_nothing(graded, name):
    score, maximum = total(graded[name, "blank"])
    assert maximum > 0 and score == 0, graded[name, "blank"]


#: The totals that book/instructors.md quotes for the wrong submissions.
EXPECTED_WRONG = {
    ("hw01_metrics", "sigma_w_over_n_minus_1"): 13,
    ("hw01_metrics", "centred_means_in_D"): 18,
    ("hw01_metrics", "calls_pncutils_metrics"): 22,
    ("hw02_construction", "forgot_alpha"): 17,
    ("hw03_hybrid", "linear_part_off_by_one"): 7,
}


@needs_otter
def test_instructors_page_quotes_the_measured_scores(graded):
    page = (ROOT / "book" / "instructors.md").read_text()
    for (name, label), expected in EXPECTED_WRONG.items():
        score, maximum = total(graded[name, label])
        assert score == expected, (name, label, graded[name, label])
        assert f"| {score:g} / {maximum:g} |" in page, (name, label)


@needs_otter
@pytest.mark.parametrize("name, label", [(n, k) for n in NAMES for k in MISTAKES[n]])
def test_wrong_submission_scores_less(graded, name, label):
    scores = graded[name, label]
    score, maximum = total(scores)
    assert 0 < score < maximum, scores  # partial credit: some cases still pass
    for question in MISTAKES[name][label][2]:
        assert scores[question][0] < scores[question][1], (question, scores)


# ----------------------------------------------------------------------------------------
# make book-student: the book without the exercises' solutions
# ----------------------------------------------------------------------------------------


def test_student_book_has_no_solutions(tmp_path):
    """tools/build_student_book.sh with execution off (about 10 s): the real target executes
    every notebook and builds with -W; without execution the figures' numrefs are unresolved,
    so this check builds without -W. The script itself fails if a solution block or a line of a
    removed solution cell reaches the HTML."""
    bin_dir = Path(sys.executable).parent
    env = dict(ENV, STUDENT_BOOK_DIR=str(tmp_path), STUDENT_BOOK_EXECUTE="off",
               STUDENT_BOOK_STRICT="0", PYTHON=sys.executable,
               JUPYTER_BOOK=str(bin_dir / "jupyter-book"))
    proc = subprocess.run(["bash", str(ROOT / "tools" / "build_student_book.sh")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "student book checked: no solution blocks" in proc.stdout
    config = (tmp_path / "student-src" / "_config.yml").read_text()
    assert "hide_solutions: true" in config
    pages = list((tmp_path / "student" / "html" / "book").glob("*.html"))
    assert pages, "no chapter was built"
    chapters_with_exercises = 0
    for page in pages:
        text = page.read_text()
        assert 'class="solution' not in text, page.name
        chapters_with_exercises += 'class="exercise' in text
    assert chapters_with_exercises > 0, "the exercises must stay in the student book"

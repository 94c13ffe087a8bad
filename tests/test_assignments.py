"""The coursework: otter-grader masters in assignments/, built by tools/make_assignments.py.

The otter tests run the instructor environment's otter (``.venv-assign``, installed by
``make assignments``/``make test``); they are skipped only when ``.venv-assign/bin/otter`` is
missing. ``otter grade`` needs Docker, so submissions are graded with ``otter run``, which runs
the autograder zip in the instructor environment. The student notebook is also executed alone
(no tests/ folder, as a student gets it) with a kernel of that environment, once as on a laptop
(otter reads the public tests from the notebook's metadata) and once as in Colab (otter's Colab
mode, which reads tests only from files: the setup cell writes them). Whole file: about 1.5
minutes on 2 CPU cores (105 s measured; each ``otter assign``, ``otter run`` or execution runs a
notebook, the executions one at a time).
"""

from __future__ import annotations

import concurrent.futures
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSIGN_VENV = ROOT / ".venv-assign"
OTTER = ASSIGN_VENV / "bin" / "otter"
ASSIGN_PYTHON = ASSIGN_VENV / "bin" / "python"
NAMES = ("hw01_metrics", "hw02_construction", "hw03_hybrid", "hw04_measure")

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
    "hw04_measure": {
        "only_the_relus": (
            'm = pnc.measure(model, (X, y), layers=["input", nn.ReLU, "output"])',
            "m = pnc.measure(model, (X, y), layers=nn.ReLU)",
            {"q2", "q3"},  # q3: C no longer has one entry per row of C_flat
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


#: Run first in the "Colab" executions: what otter looks at to detect Colab
#: (``otter.check.utils.IPythonInterpreter``: "google.colab" in ``str(get_ipython())``), and the
#: module that the setup cell looks for.
COLAB_STAND_IN = """\
import sys, types
sys.modules.setdefault("google", types.ModuleType("google"))
sys.modules["google.colab"] = types.ModuleType("google.colab")
type(get_ipython()).__str__ = lambda self: "<google.colab._shell.Shell object (test stand-in)>"
"""

#: Appended to every execution: what each ``grader.check`` ran, from where, and otter's mode.
PROBE = """\
import json as _json
_probe = {"interpreter": str(grader.interpreter), "checks": {}}
for _q in %r:
    _r = grader.check(_q)
    _probe["checks"][_q] = [_r.passed_all, len(_r.test_case_results), _r.path]
print("PROBE " + _json.dumps(_probe))
"""

_PIP_INSTALL = re.compile(r'subprocess\.run\(\[sys\.executable, "-m", "pip", "install",.*?'
                          r"check=True\)", re.S)


def execute_notebook(nb: dict, cwd: Path, questions: list[str], colab: bool = False) -> tuple[
        dict, dict]:
    """Execute a notebook (in memory: only what ``cwd`` holds is on disk) with a kernel of the
    instructor environment, errors allowed; return (executed notebook, probe). With ``colab``,
    otter and the setup cell see Colab, and the setup cell's pip install is skipped (the kernel
    has otter-grader and pncutils)."""
    import nbclient
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    nb = copy.deepcopy(nb)
    if colab:
        setup = next(c for c in nb["cells"] if "PUBLIC_TESTS" in _source(c))
        src = _source(setup)
        installs = _PIP_INSTALL.findall(src)
        assert len(installs) == 1, "the setup cell's pip install line changed"
        assert "otter-grader==7.0.0" in installs[0] and ma._repository_url() in installs[0]
        setup["source"] = src.replace(installs[0], "pass  # (test: installed in the kernel)")
        nb["cells"].insert(0, {"cell_type": "code", "id": "test-colab-stand-in", "metadata": {},
                               "outputs": [], "execution_count": None, "source": COLAB_STAND_IN})
    nb["cells"].append({"cell_type": "code", "id": "test-probe", "metadata": {}, "outputs": [],
                        "execution_count": None, "source": PROBE % (questions,)})
    node = nbformat.reads(json.dumps(nb), as_version=4)  # sources as strings
    kernels = cwd.parent / f"{cwd.name}-kernels"
    (kernels / "assign").mkdir(parents=True)
    (kernels / "assign" / "kernel.json").write_text(json.dumps({
        "argv": [str(ASSIGN_PYTHON), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "instructor environment", "language": "python"}))
    km = KernelManager(kernel_name="assign",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    client = nbclient.NotebookClient(node, km=km, timeout=300, startup_timeout=120,
                                     allow_errors=True)
    try:
        client.execute(env=dict(ENV, PYTHONNOUSERSITE="1"), cwd=str(cwd))
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    text = "".join(o.get("text", "") for o in node.cells[-1].get("outputs", []))
    probe = [line for line in text.splitlines() if line.startswith("PROBE ")]
    errors = [f"cell {i}: {o['ename']}: {o['evalue']}" for i, c in enumerate(node.cells)
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert len(probe) == 1, f"the probe cell failed; errors: {errors}; its output: {text}"
    return node, json.loads(probe[0].removeprefix("PROBE "))


def check_outputs(nb: dict) -> dict[str, str]:
    """{question: the text output of its ``grader.check("q")`` cell} of an executed notebook."""
    outputs = {}
    for cell in nb["cells"]:
        m = re.fullmatch(r'grader\.check\("(\w+)"\)', _source(cell).strip())
        if cell["cell_type"] == "code" and m:
            texts = []
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    texts.append(f"{out['ename']}: {out['evalue']}")
                else:
                    texts.append(out.get("text") or out.get("data", {}).get("text/plain", ""))
            outputs[m.group(1)] = "".join(texts)
    return outputs


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


@pytest.fixture(scope="module")
def executed(built, tmp_path_factory):
    """{(name, where, label): (executed notebook, probe, folder)}: the student notebook with the
    master's answers (label "correct") or a mistake, executed alone, as on a laptop ("local":
    the notebook alone in an empty folder) or as in Colab ("colab": an empty folder, the
    notebook in memory only)."""
    out, _ = built
    masters = _masters()
    jobs = [(name, where, "correct") for name in NAMES for where in ("local", "colab")]
    jobs += [("hw01_metrics", where, "sigma_w_over_n_minus_1") for where in ("local", "colab")]
    results = {}
    for name, where, label in jobs:
        master = masters[name]
        work = tmp_path_factory.mktemp(f"alone-{name}-{where}-{label}")
        folder = work / "content"
        folder.mkdir()
        student = work / "handed-out" / f"{name}.ipynb"
        student.parent.mkdir()
        shutil.copy(out / name / "student" / f"{name}.ipynb", student)  # the notebook alone
        target = (folder if where == "local" else work) / f"{name}.ipynb"
        mistake = MISTAKES[name].get(label)
        fill_student_notebook(student, master, target, mistake)
        nb = json.loads(target.read_text())
        node, probe = execute_notebook(nb, folder, sorted(master.points), colab=where == "colab")
        results[name, where, label] = (node, probe, folder)
        print(f"{name:18} {where:6} {label:24} {probe}")  # shown with pytest -s
    return results


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
        assert Path(s["autograder_zip"]).exists() and Path(s["student_notebook"]).exists()
        assert s["hidden_cases"] > 0 and s["public_cases"] > 0, name
        # what students get is the notebook alone: no tests/ folder, no zip to upload
        student_files = list((out / name / "student").rglob("*"))
        assert student_files == [Path(s["student_notebook"])], student_files
        assert not list((out / name).glob("*.zip")), name


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
    # the public tests are in the notebook's metadata, and the same packed for Colab; no hidden
    tests = nb["metadata"]["otter"]["tests"]
    assert nb["metadata"]["otter"]["OK_FORMAT"] is True
    assert set(tests) == set(master.points), "one test per autograded question"
    for question, test in tests.items():
        cases = ma._cases(test)
        assert len(cases) == master.public_tests[question] >= 1, question
        assert not any(c["hidden"] for c in cases), question
        assert [ma.case_code(c) for c in cases] == master.public_test_code[question], question
    assert ma.colab_tests(nb) == tests
    assert not (student_dir / "tests").exists()
    with pytest.raises(ma.AssignmentError):  # and the checker would notice a leak
        leaky = copy.deepcopy(nb)
        leaky["cells"].append({"cell_type": "markdown", "metadata": {}, "id": "leak",
                               "source": sorted(master.solution_lines)[0]})
        shutil.copytree(out / name, tmp_path / name)
        (tmp_path / name / "student" / f"{name}.ipynb").write_text(json.dumps(leaky))
        ma.check_student(master, tmp_path / name)


@needs_otter
@pytest.mark.parametrize("where", ["metadata", "metadata, as public", "colab", "tests folder"])
def test_checker_notices_a_hidden_case_in_the_student_tests(built, tmp_path, where):
    """A hidden case of the autograder zip in the student notebook's metadata tests (flagged
    hidden, or relabelled public: then its code gives it away), in the tests packed for Colab, or
    a tests/ folder beside the notebook: the checker refuses each."""
    out, summaries = built
    name = "hw01_metrics"
    shutil.copytree(out / name, tmp_path / name)
    master = ma.read_master(ROOT / "assignments" / f"{name}.ipynb")
    ma.check_student(master, tmp_path / name)  # the copy as built is clean
    with zipfile.ZipFile(summaries[name]["autograder_zip"]) as zf:
        q1_text = zf.read("tests/q1.py").decode()  # all cases, hidden included
    q1 = ma.ok_test(q1_text, "q1.py")
    assert any(c["hidden"] for c in ma._cases(q1))
    student = tmp_path / name / "student" / f"{name}.ipynb"
    nb = json.loads(student.read_text())
    if where == "metadata":
        nb["metadata"]["otter"]["tests"]["q1"] = q1
        match = "contains hidden test cases"
    elif where == "metadata, as public":
        case = copy.deepcopy(next(c for c in ma._cases(q1) if c["hidden"]))
        case["hidden"] = False
        nb["metadata"]["otter"]["tests"]["q1"]["suites"][0]["cases"].append(case)
        match = "metadata tests\\): contains the hidden-test line"
    elif where == "colab":
        tests = copy.deepcopy(nb["metadata"]["otter"]["tests"])
        tests["q1"] = q1
        old = ma.pack_tests(nb["metadata"]["otter"]["tests"])
        for cell in nb["cells"]:
            joined = "".join(cell["source"])
            # the packed string is cut into lines in the cell: rejoin, then swap it
            packed = re.sub(r'"\s*\n\s*"', "", joined)
            if old in packed:
                cell["source"] = packed.replace(old, ma.pack_tests(tests))
        assert ma.colab_tests(nb) == tests
        match = "Colab tests\\): question q1 contains hidden test cases"
    else:
        (student.parent / "tests").mkdir()
        (student.parent / "tests" / "q1.py").write_text(q1_text)
        match = "unexpected file"
    student.write_text(json.dumps(nb))
    with pytest.raises(ma.AssignmentError, match=match):
        ma.check_student(master, tmp_path / name)


# ----------------------------------------------------------------------------------------
# the student notebook alone: grader.check runs its public tests, locally and as in Colab
# ----------------------------------------------------------------------------------------


@needs_otter
@pytest.mark.parametrize("where", ["local", "colab"])
@pytest.mark.parametrize("name", NAMES)
def test_student_notebook_alone_passes_its_public_tests(executed, name, where):
    master = ma.read_master(ROOT / "assignments" / f"{name}.ipynb")
    node, probe, folder = executed[name, where, "correct"]
    outputs = check_outputs(node)
    assert set(outputs) == set(master.points), outputs
    for question, text in outputs.items():
        assert text.strip() == f"{question} results: All test cases passed!", (question, text)
    for question, (passed, cases, path) in probe["checks"].items():
        assert passed and cases == master.public_tests[question], (question, probe)
        if where == "local":  # read from the notebook's metadata: the notebook is the test file
            assert path == f"{name}.ipynb", probe
        else:  # otter's Colab mode: files that the setup cell wrote
            assert path == os.path.join("tests", f"{question}.py"), probe
    if where == "local":
        assert probe["interpreter"] == "None"
        assert not (folder / "tests").exists()
        assert {p.name for p in folder.iterdir()} <= {f"{name}.ipynb", ".OTTER_LOG"}
    else:
        assert probe["interpreter"] == "IPythonInterpreter.COLAB", probe
        assert sorted(p.name for p in (folder / "tests").iterdir()) == sorted(
            f"{q}.py" for q in master.points)
        assert not list(folder.glob("*.ipynb"))


@needs_otter
@pytest.mark.parametrize("where", ["local", "colab"])
def test_student_notebook_alone_reports_a_wrong_answer(executed, where):
    """Sigma_W divided by N - 1: the public tests of q1 (and q3, which uses it) fail."""
    node, probe, _ = executed["hw01_metrics", where, "sigma_w_over_n_minus_1"]
    outputs = check_outputs(node)
    for question in ("q1", "q3"):
        text = outputs[question]
        assert text.startswith(f"{question} results:"), text
        assert "All test cases passed" not in text and "❌ Test case failed" in text, text
        assert probe["checks"][question][0] is False, probe
    assert "✅ Test case passed" in outputs["q1"], outputs["q1"]  # class_means is still right
    assert probe["checks"]["q1"][1] == 2, probe  # both public cases of q1 ran
    for question in ("q2", "q4", "q5"):
        assert outputs[question].strip() == f"{question} results: All test cases passed!"


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
    ("hw04_measure", "only_the_relus"): 4,
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

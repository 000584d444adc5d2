"""The command line: bounds (every box source and option), verify, info, exit codes, JSON, the
VNN-COMP result file, the progress display, and bad input.

Most checks run the real console entry in a subprocess. Each subprocess pays about a second of
interpreter and import start-up, so related checks share one call, independent calls are
launched together (``run_all``), and further variants of the same code paths (more bad inputs,
the JSON of a text-tested command) call ``nnrange.cli.main`` in this process.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import MODELS
from onnx_zoo import N, make

from nnrange.cli import main

CLI = [sys.executable, "-m", "nnrange.cli"]


def run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def run_all(cases: dict[str, tuple]) -> dict[str, subprocess.CompletedProcess]:
    """Run several independent command lines at once; results by case name."""
    workers = max(2, (os.cpu_count() or 1) + 1)
    with ThreadPoolExecutor(workers) as pool:
        futures = {name: pool.submit(run, *args) for name, args in cases.items()}
        return {name: f.result() for name, f in futures.items()}


def call(capsys, *args) -> tuple[int, str, str]:
    """``nnrange ARGS`` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def opts(text: str) -> list[str]:
    return text.split()


# ---------------------------------------------------------------------------- tiny models
def _save(model, path: Path) -> Path:
    onnx.save(model, path)
    return path


def _gemm(tmp_path: Path, name: str, w) -> Path:
    w = np.asarray(w, dtype=np.float32)
    return _save(make([N("Gemm", ["x", "W"], ["y"], transB=1)], [1, 2], {"W": w}), tmp_path / name)


def sum_model(tmp_path: Path) -> Path:
    """y = x0 + x1 (input shape (1, 2), one output)."""
    return _gemm(tmp_path, "sum.onnx", [[1, 1]])


def three_model(tmp_path: Path) -> Path:
    """y = (x0 + x1, x0 - x1, 2 x0): ranges [0, 2], [-1, 1], [0, 2] on [0, 1]^2."""
    return _gemm(tmp_path, "three.onnx", [[1, 1], [1, -1], [2, 0]])


def _vnnlib(path: Path, n_in: int, n_out: int, body: str) -> Path:
    decl = [f"(declare-const X_{i} Real)" for i in range(n_in)]
    decl += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    path.write_text("\n".join(decl) + "\n" + body + "\n")
    return path


UNIT_BOX = "(assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (>= X_1 0))\n(assert (<= X_1 1))"
TWO_BOXES = (
    "(assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1))\n"
    "            (and (>= X_0 2) (<= X_0 3) (>= X_1 -1) (<= X_1 0))))\n"
    "(assert (>= Y_0 100))"
)


def _table_rows(text: str, name: str) -> list[list[float]]:
    """The numbers of every table row of output ``name``."""
    rows = [line.split() for line in text.splitlines() if line.split()[:1] == [name]]
    return [[float(v) for v in r[1:5]] for r in rows]


# ---------------------------------------------------------------------------- bounds
@pytest.mark.keras
def test_keras_model_through_cli():
    out = run("bounds", MODELS / "example_two_layer.keras", *opts("--lo 0 --hi 1 --json"))
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["lower"] == [0.0] and data["upper"] == [4.0] and data["exact"] == [True]


def test_table_methods_inner_and_escalation():
    out = run_all(
        {
            "table": ("bounds", MODELS / "example_diff.onnx", *opts("--lo 0,0 --hi 1 1")),
            "ibp_off": (
                "bounds",
                MODELS / "example_sum.onnx",
                *opts("--lo 0 --hi 1 --method ibp --inner off --json"),
            ),
            "exact": (
                "bounds",
                MODELS / "example_two_layer.onnx",
                *opts("--lo 0 --hi 1 --inner thorough --seed 3 --exact --timeout 30 --json"),
            ),
        }
    )
    t = out["table"]
    assert t.returncode == 0, t.stderr
    header = next(line for line in t.stdout.splitlines() if line.split()[:1] == ["output"])
    assert header.split()[1:] == ["lower", "inner", "lower", "inner", "upper", "upper", "exact"]
    assert _table_rows(t.stdout, "0") == [[-0.5, -0.5, 1.0, 1.0]] and "yes" in t.stdout
    assert "box: --lo/--hi (2 inputs)" in t.stdout
    assert re.search(r"engines: crown\+sample +status: ok +time: [\d.e-]+ s", t.stdout)
    assert t.stderr == ""  # no progress display when stderr is not a terminal

    d = json.loads(out["ibp_off"].stdout)
    assert d["engines"] == ["ibp"] and d["method"] == "ibp" and d["model"].endswith("sum.onnx")
    assert d["inner_lower"] == [None] and d["inner_upper"] == [None]  # no inner search
    assert d["lower"] == [0.0] and d["upper"] == [2.0] and d["exact"] == [False]
    assert d["box"] == {"source": "--lo/--hi", "n_boxes": 1, "lo": [0.0, 0.0], "hi": [1.0, 1.0]}

    e = out["exact"]
    assert e.returncode == 0, e.stderr
    d = json.loads(e.stdout)
    assert d["method"] == "auto" and d["engines"][0] == "crown"
    assert d["lower"] == [0.0] and d["upper"] == [4.0] and d["exact"] == [True]


def test_box_file_center_ball_and_outputs(tmp_path):
    model = three_model(tmp_path)
    (tmp_path / "two.json").write_text(
        json.dumps({"lo": [[0, 0], [2, -1]], "hi": [[1, 1], [3, 0]]})
    )
    np.save(tmp_path / "c.npy", np.array([[0.95, 0.5]]))
    out = run_all(
        {
            "two": ("bounds", model, "--box", tmp_path / "two.json", *opts("--outputs 2,0 --json")),
            "ball": (
                "bounds",
                model,
                *("--center", tmp_path / "c.npy"),
                *opts("--eps 0.1 --clip-lo 0 --clip-hi 1 --method crown --json"),
            ),
        }
    )
    for name, o in out.items():
        assert o.returncode == 0, (name, o.stderr)
    d = json.loads(out["two"].stdout)  # two boxes, outputs 2 and 0 only
    assert d["batched"] and d["box"]["n_boxes"] == 2 and d["outputs"] == [2, 0]
    assert d["lower"] == [[0.0, 0.0], [4.0, 1.0]] and d["upper"] == [[2.0, 2.0], [6.0, 3.0]]
    assert d["box"]["lo"] == [[0.0, 0.0], [2.0, -1.0]] and d["box"]["source"].endswith("two.json")
    assert np.shape(d["witness_upper"]) == (2, 2, 1, 2)

    d = json.loads(out["ball"].stdout)  # [0.85, 1] x [0.4, 0.6] after clipping to [0, 1]
    assert np.allclose(d["box"]["lo"], [0.85, 0.4]) and np.allclose(d["box"]["hi"], [1.0, 0.6])
    assert d["box"]["eps"] == 0.1 and d["box"]["clip"] == [0.0, 1.0]
    assert np.allclose(d["lower"], [1.25, 0.25, 1.7]) and np.allclose(d["upper"], [1.6, 0.6, 2.0])


def test_vnnlib_boxes_milp_timeout_and_exit_code_2(tmp_path):
    model = three_model(tmp_path)
    prop = _vnnlib(tmp_path / "two.vnnlib", 2, 3, TWO_BOXES)
    mlp = ("bounds", MODELS / "mlp.onnx", *opts("--lo -1 --hi 1 --method milp"))
    out = run_all(
        {
            "vnnlib": ("bounds", model, "--vnnlib", prop, *opts("--outputs 1")),
            "milp": (*mlp, *opts("--timeout 60 --outputs 0 --json")),
            "milp_cut": (*mlp, *opts("--timeout 1e-6")),
        }
    )
    v = out["vnnlib"]
    assert v.returncode == 0, v.stderr
    assert "box 0:" in v.stdout and "box 1:" in v.stdout and "(outputs 1 of 3)" in v.stdout
    assert "(2 boxes, 2 inputs each)" in v.stdout
    rows = _table_rows(v.stdout, "1")  # x0 - x1 on each box
    assert [r[0] for r in rows] == [-1.0, 2.0] and [r[3] for r in rows] == [1.0, 4.0]

    m = out["milp"]
    assert m.returncode == 0, m.stderr
    d = json.loads(m.stdout)
    assert d["engines"][0] == "milp" and d["status"] == "ok" and d["exact"] == [True]

    c = out["milp_cut"]  # stopped by the time limit: sound but loose, exit code 2
    assert c.returncode == 2, c.stderr
    assert "status: timeout" in c.stdout


def test_bounds_variants_in_process(tmp_path, capsys):
    model = three_model(tmp_path)
    (tmp_path / "box.json").write_text(json.dumps({"lo": [0, 0], "hi": [1, 1]}))
    code, out, _ = call(capsys, "bounds", model, "--box", tmp_path / "box.json", "--json")
    d = json.loads(out)
    assert code == 0 and d["lower"] == [0.0, -1.0, 0.0] and d["upper"] == [2.0, 1.0, 2.0]
    assert d["box"]["source"].endswith("box.json") and d["outputs"] is None

    prop = _vnnlib(tmp_path / "two.vnnlib", 2, 3, TWO_BOXES)
    code, out, _ = call(capsys, "bounds", model, "--vnnlib", prop, "--json")
    d = json.loads(out)
    assert code == 0 and d["box"]["n_boxes"] == 2 and d["box"]["source"].endswith("two.vnnlib")
    assert d["lower"] == [[0.0, -1.0, 0.0], [1.0, 2.0, 4.0]]

    code, out, _ = call(capsys, "bounds", MODELS / "mlp.onnx", *opts("--lo -1 --hi 1 --json"))
    plain = json.loads(out)
    code, out, _ = call(
        capsys, "bounds", MODELS / "mlp.onnx", *opts("--lo -1 --hi 1 --tolerance 1e-3 --json")
    )
    tol = json.loads(out)
    assert (
        code == 0 and tol["tolerance"]["atol"] == 1e-3 and plain["engines"] == ["crown", "sample"]
    )
    assert tol["upper"][0] <= plain["upper"][0] and tol["lower"][0] >= plain["lower"][0]

    code, out, _ = call(capsys, "--version")
    assert code == 0 and out.startswith("nnrange ")


# ---------------------------------------------------------------------------- verify
def _parse_vnncomp(text: str) -> tuple[str, dict[str, float]]:
    first, _, rest = text.partition("\n")
    values = {m[0]: float(m[1]) for m in re.findall(r"\((\w+_\d+) (\S+?)\)", rest)}
    return first.strip(), values


def test_verify_hand_made_properties(tmp_path, capsys):
    model = sum_model(tmp_path)
    sat = _vnnlib(tmp_path / "sat.vnnlib", 2, 1, UNIT_BOX + "\n(assert (>= Y_0 1.5))")
    unsat = _vnnlib(tmp_path / "unsat.vnnlib", 2, 1, UNIT_BOX + "\n(assert (>= Y_0 2.5))")
    out = run_all(
        {
            "sat": ("verify", model, sat, "--vnncomp-out", tmp_path / "sat.out"),
            "unsat": (
                *("verify", model, unsat, "--vnncomp-out", tmp_path / "unsat.out"),
                *opts("--json --quiet --seed 1"),
            ),
            "timeout": (
                "verify",
                model,
                unsat,
                "--timeout",
                "1e-6",
                "--vnncomp-out",
                tmp_path / "t",
            ),
        }
    )
    s = out["sat"]  # y = x0 + x1 >= 1.5 is reachable on [0, 1]^2
    assert s.returncode == 1, s.stderr
    assert s.stderr == ""
    assert "result: violated" in s.stdout and "counterexample X (2 inputs)" in s.stdout
    assert "re-check: forward pass lands in the unsafe region of box 0: yes" in s.stdout
    assert "re-check: ONNX Runtime (float32) lands in the unsafe region: yes" in s.stdout
    text = (tmp_path / "sat.out").read_text()
    assert text.startswith("sat\n((X_0 ") and text.endswith("))\n")
    word, v = _parse_vnncomp(text)
    assert word == "sat" and sorted(v) == ["X_0", "X_1", "Y_0"]
    assert 0 <= v["X_0"] <= 1 and 0 <= v["X_1"] <= 1
    assert v["Y_0"] >= 1.5 and abs(v["Y_0"] - v["X_0"] - v["X_1"]) < 1e-6

    u = out["unsat"]  # ... and 2.5 is not
    assert u.returncode == 0, u.stderr
    d = json.loads(u.stdout)
    assert d["verdict"] == "holds" and d["counterexample"] is None and not d["timed_out"]
    assert (tmp_path / "unsat.out").read_text() == "unsat\n"

    t = out["timeout"]
    assert t.returncode == 2, t.stderr
    assert "result: unknown" in t.stdout
    assert (tmp_path / "t").read_text() == "timeout\n"

    code, out_, _ = call(capsys, "verify", model, sat, "--json")
    d = json.loads(out_)
    assert code == 1 and d["verdict"] == "violated" and len(d["counterexample"]) == 2
    assert d["check"]["forward_unsafe"] and d["check"]["input_in_box"]
    assert sum(d["counterexample"]) == pytest.approx(d["output"][0]) and d["output"][0] >= 1.5
    code, out_, _ = call(capsys, "verify", model, unsat)
    assert code == 0 and "result: holds" in out_ and "counterexample" not in out_


def test_bench_verify_test_instances(bench, tmp_path):
    import onnxruntime as ort

    from nnrange.spec import load_vnnlib

    t = bench / "test"
    cases = {
        "test_sat": (t / "test_sat.onnx", t / "test_prop.vnnlib", 1),
        "test_unsat": (t / "test_unsat.onnx", t / "test_prop.vnnlib", 0),
        # published: nano, tiny and small hold (their outputs never reach the unsafe region)
        "test_nano": (t / "test_nano.onnx", t / "test_nano.vnnlib", 0),
        "test_tiny": (t / "test_tiny.onnx", t / "test_tiny.vnnlib", 0),
        "test_small": (t / "test_small.onnx", t / "test_small.vnnlib", 0),
    }
    out = run_all(
        {
            name: ("verify", net, prop, "--timeout", "60", "--vnncomp-out", tmp_path / name)
            for name, (net, prop, _) in cases.items()
        }
    )
    for name, (_, _, code) in cases.items():
        assert out[name].returncode == code, (name, out[name].stdout, out[name].stderr)
        word = (tmp_path / name).read_text().split()[0]
        assert word == ("sat" if code == 1 else "unsat"), name

    # the counterexample, run through ONNX Runtime, lands in the unsafe region
    net, prop_path, _ = cases["test_sat"]
    _, v = _parse_vnncomp((tmp_path / "test_sat").read_text())
    x = np.array([v[f"X_{i}"] for i in range(5)])
    prop = load_vnnlib(prop_path)
    assert np.all(prop.cases[0].lo <= x) and np.all(x <= prop.cases[0].hi)
    sess = ort.InferenceSession(str(net), providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32).reshape(1, 1, 1, 5)})
    y = np.asarray(y[0], dtype=np.float64).reshape(-1)
    assert prop.is_unsafe(y)
    assert np.allclose(y, [v[f"Y_{j}"] for j in range(5)], atol=1e-5)


# ---------------------------------------------------------------------------- info, help
def test_info_and_help(tmp_path):
    w = np.ones((3, 2), dtype=np.float32)
    nodes = [N("Gemm", ["x", "W"], ["h"], transB=1), N("Sigmoid", ["h"], ["y"])]
    sig = _save(make(nodes, [1, 2], {"W": w}), tmp_path / "sig.onnx")
    out = run_all(
        {
            "cnn": ("info", MODELS / "cnn.onnx"),
            "sig": ("info", sig, "--json"),
            "help": ("bounds", "--help"),
        }
    )
    c = out["cnn"]
    assert c.returncode == 0, c.stderr
    assert "Conv" in c.stdout and "MaxPool" in c.stdout and "Dense" in c.stdout
    header = next(line for line in c.stdout.splitlines() if line.startswith("name"))
    for col in ("op", "output shape", "params", "ibp", "crown", "alpha-crown", "sample"):
        assert col in header
    assert " no " not in c.stdout  # every engine handles every layer of this net

    s = out["sig"]
    assert s.returncode == 0, s.stderr
    d = json.loads(s.stdout)
    rows = {r["op"]: r for r in d["nodes"]}
    assert rows["Sigmoid"]["engines"]["crown"] and rows["Dense"]["engines"]["ibp"]
    assert d["engines"]["crown"]["supported"] and d["engines"]["crown"]["reason"] is None
    if "milp" in d["engines"]:  # the MILP refuses the sigmoid, and says why
        assert not d["engines"]["milp"]["supported"] and d["engines"]["milp"]["reason"]
        assert not rows["Sigmoid"]["engines"]["milp"] and rows["Dense"]["engines"]["milp"]

    from nnrange.engines import ENGINES

    h = out["help"].stdout
    assert out["help"].returncode == 0
    for name in ENGINES:
        assert f"  {name} " in h  # every registered engine is listed
    for code in ("0  success", "1  the property is violated", "2  unknown", "3  usage", "4  "):
        assert code in h
    for source in ("--lo", "--box", "--center", "--eps", "--clip-lo", "--vnnlib"):
        assert source in h


# ---------------------------------------------------------------------------- progress display
def _run_with_terminal_stderr(*args) -> tuple[int, str, bytes]:
    """Run with stderr on a pseudo-terminal; (exit code, stdout, bytes written to stderr)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL
    )
    os.close(slave)
    data = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed its end
                chunk = b""
            data += chunk
            if not chunk and proc.poll() is not None:
                break
        elif proc.poll() is not None:
            break
    stdout = proc.stdout.read().decode()
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, stdout, data


def test_progress_on_terminal_only_and_quiet(tmp_path):
    model = sum_model(tmp_path)
    prop = _vnnlib(tmp_path / "p.vnnlib", 2, 1, UNIT_BOX + "\n(assert (>= Y_0 2.5))")
    with ThreadPoolExecutor(2) as pool:
        shown = pool.submit(_run_with_terminal_stderr, "verify", model, prop)
        quiet = pool.submit(_run_with_terminal_stderr, "bounds", model, *opts("--lo 0 --hi 1 -q"))
        code, stdout, err = shown.result()
        qcode, qstdout, qerr = quiet.result()
    assert code == 0 and qcode == 0 and "result: holds" in stdout and "engines:" in qstdout
    assert b"\x1b[K" in err  # the display was on (and erased its line at the end)
    assert qerr == b""


def test_progress_helper_draws_and_erases():
    import io

    from nnrange.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    with Progress("verify", total=4, stream=term, min_interval=0) as bar:
        bar.update(done=2, text="lower -0.5  open 3")
    text = term.getvalue()
    assert "verify  [##########----------] 2/4  lower -0.5  open 3" in text
    assert text.endswith("\r\x1b[K")
    pipe = io.StringIO()
    with Progress("verify", total=4, stream=pipe) as bar:
        bar.update(done=1)
    assert pipe.getvalue() == "" and not bar.enabled
    with Progress("verify", stream=Terminal(), enabled=False) as bar:  # --quiet
        assert not bar.enabled


# ---------------------------------------------------------------------------- bad input
def _bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "sin": _save(make([N("Sin", ["x"], ["y"])], [1, 3]), tmp_path / "sin.onnx"),
        "bad_vnnlib": tmp_path / "bad.vnnlib",
        "op_vnnlib": _vnnlib(tmp_path / "op.vnnlib", 2, 1, UNIT_BOX + "\n(assert (foo Y_0 1))"),
        "unsat": _vnnlib(tmp_path / "u.vnnlib", 2, 1, UNIT_BOX + "\n(assert (>= Y_0 2.5))"),
        "bad_json": tmp_path / "bad.json",
        "keys_json": tmp_path / "keys.json",
        "flip_json": tmp_path / "flip.json",
        "not_npy": tmp_path / "notnpy.npy",
    }
    files["bad_vnnlib"].write_text(
        "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 0)\n"
    )
    files["bad_json"].write_text('{"lo": [0, 0], "hi": ')
    files["keys_json"].write_text('{"low": 0, "high": 1}')
    files["flip_json"].write_text('{"lo": [0, 1], "hi": [1, 0]}')
    files["not_npy"].write_text("hello")
    return files


def _problems(results: dict[str, tuple[int, str]], cases: dict) -> list[str]:
    bad = []
    for name, (_, message) in cases.items():
        code, err = results[name]
        if code != 3 or message not in err or "Traceback" in err:
            bad.append(f"{name}: exit {code}, stderr {err!r}")
    return bad


def test_bad_input_exit_code_3_and_message(tmp_path):
    """The main kinds of bad input, through the real console entry (a subprocess each)."""
    m = MODELS / "example_sum.onnx"
    f = _bad_files(tmp_path)
    box = opts("--lo 0 --hi 1")
    cases = {
        "missing model": (("bounds", "missing.onnx", *box), "missing.onnx: file not found"),
        "lo > hi": (("bounds", m, *opts("--lo 1 --hi 0")), "lo > hi at input dimension 0"),
        "unknown method": (("bounds", m, *box, "--method", "magic"), "unknown method 'magic'"),
        "two sources": (
            ("bounds", m, *box, "--vnnlib", f["unsat"]),
            "give exactly one box source, not --lo/--hi and --vnnlib",
        ),
        "unsupported op": (("bounds", f["sin"], *box), "Sin (node 'y')"),
        "malformed vnnlib": (
            ("verify", m, f["bad_vnnlib"], "--vnncomp-out", tmp_path / "r.out"),
            "bad.vnnlib:3:1: '(' is never closed",
        ),
    }
    out = run_all({name: args for name, (args, _) in cases.items()})
    problems = _problems({k: (o.returncode, o.stderr) for k, o in out.items()}, cases)
    assert not problems, "\n".join(problems)
    assert (tmp_path / "r.out").read_text() == "error\n"  # VNN-COMP's word for it


def test_more_bad_input_in_process(tmp_path, capsys):
    """Every other input check, through ``main()`` in this process (same code, no start-up)."""
    m = MODELS / "example_sum.onnx"
    f = _bad_files(tmp_path)
    box = opts("--lo 0 --hi 1")
    box3 = "\n".join(f"(assert (>= X_{i} 0))\n(assert (<= X_{i} 1))" for i in range(3))
    x3 = _vnnlib(tmp_path / "x3.vnnlib", 3, 1, box3)
    no_output = _vnnlib(tmp_path / "no_output.vnnlib", 2, 1, UNIT_BOX)
    nan_rhs = _vnnlib(tmp_path / "nan.vnnlib", 2, 1, UNIT_BOX + "\n(assert (>= Y_0 nan))")
    centre = tmp_path / "centre.npy"
    np.save(centre, np.array([0.1, 0.2]))
    cases = {
        "lo > hi in file": (("bounds", m, "--box", f["flip_json"]), "flip.json: lo > hi at input"),
        "wrong size": (("bounds", m, *opts("--lo 0 0 0 --hi 1")), "(3 values)"),
        "not a number": (("bounds", m, *opts("--lo x --hi 1")), "--lo: not a number: 'x'"),
        "no box": (("bounds", m), "the input box is required"),
        "box and center": (
            ("bounds", m, "--box", f["bad_json"], *opts("--center c.npy --eps 1")),
            "not --box and --center/--eps",
        ),
        "lo without hi": (("bounds", m, "--lo", "0"), "--lo and --hi go together"),
        "eps without center": (("bounds", m, "--eps", "0.1"), "--center and --eps go together"),
        "clip without ball": (("bounds", m, *box, "--clip-lo", "0"), "only apply to an L-inf"),
        "clip order": (
            ("bounds", m, *opts("--center c.npy --eps 1 --clip-lo 1 --clip-hi 0")),
            "--clip-lo 1.0 is above --clip-hi 0.0",
        ),
        "clip outside ball": (
            ("bounds", m, "--center", centre, *opts("--eps 0.01 --clip-lo 0.5 --clip-hi 1")),
            "do not meet the ball around",
        ),
        "width overflows": (("bounds", m, "--lo=-1e308", "--hi", "1e308"), "overflows float64"),
        "stray comma": (("bounds", m, *opts("--lo 0,,1 --hi 1")), "empty value in '0,,1'"),
        "negative seed": (("bounds", m, *box, "--seed", "-1"), "--seed: must be at least 0"),
        "not npy": (("bounds", m, "--center", f["not_npy"], "--eps", "1"), "not a numpy .npy"),
        "negative eps": (("bounds", m, *opts("--center c.npy --eps -1")), "finite number >= 0"),
        "bad json": (("bounds", m, "--box", f["bad_json"]), "not valid JSON (line 1"),
        "json keys": (("bounds", m, "--box", f["keys_json"]), "found ['high', 'low']"),
        "missing json": (("bounds", m, "--box", tmp_path / "no.json"), "no.json: file not found"),
        "missing npy": (("bounds", m, *opts("--center no.npy --eps 1")), "no.npy: file not found"),
        "outputs range": (("bounds", m, *box, "--outputs", "0,5"), "--outputs 5: the model has 1"),
        "outputs text": (("bounds", m, *box, "--outputs", "a"), "expected output indices"),
        "bad timeout": (("bounds", m, *box, "--timeout", "-1"), "positive number"),
        "bad inner": (("bounds", m, *box, "--inner", "deep"), "invalid choice: 'deep'"),
        "malformed vnnlib box": (("bounds", m, "--vnnlib", f["bad_vnnlib"]), "bad.vnnlib:3:1:"),
        "vnnlib box size": (("bounds", m, "--vnnlib", x3), "x3.vnnlib: lo has shape (3,)"),
        "verify operator": (("verify", m, f["op_vnnlib"]), "op.vnnlib:8:9: unsupported operator"),
        "verify missing prop": (("verify", m, tmp_path / "no.vnnlib"), "no.vnnlib: file not found"),
        "verify missing model": (("verify", "gone.onnx", f["unsat"]), "gone.onnx: file not found"),
        "verify size": (("verify", MODELS / "mlp.onnx", x3), "declares 3 inputs X_i but the model"),
        "verify timeout": (("verify", m, f["unsat"], "--timeout", "0"), "positive number"),
        "verify no output": (("verify", m, no_output), "constrains no output Y_j"),
        "verify nan": (("verify", m, nan_rhs), "nan.vnnlib:8:17: 'nan' is not a finite number"),
        "verify workers": (("verify", m, f["unsat"], "--workers", "0"), "must be at least 1"),
        "info missing": (("info", "nothing.onnx"), "nothing.onnx: file not found"),
        "info unsupported": (("info", f["sin"]), "Sin (node 'y')"),
        "no command": ((), "required"),
        "bad command": (("frobnicate",), "invalid choice"),
    }
    results = {}
    for name, (args, _) in cases.items():
        code, _, err = call(capsys, *args)
        results[name] = (code, err)
    problems = _problems(results, cases)
    assert not problems, "\n".join(problems)


BOUNDS_KEYS = {
    "model",
    "box",
    "method",
    "engines",
    "status",
    "batched",
    "input_shape",
    "output_shape",
    "outputs",
    "lower",
    "upper",
    "inner_lower",
    "inner_upper",
    "exact",
    "witness_lower",
    "witness_upper",
    "timings",
    "tolerance",
    "seconds",
    "notes",
}
VERIFY_KEYS = {
    "model",
    "property",
    "verdict",
    "detail",
    "seconds",
    "wall_seconds",
    "timeout",
    "timed_out",
    "pieces",
    "boxes",
    "unsafe_regions",
    "counterexample",
    "output",
    "check",
    "vnncomp_out",
}


def test_json_schema_is_the_documented_one(tmp_path):
    out = run("bounds", MODELS / "example_sum.onnx", "--lo", "0", "--hi", "1", "--json")
    data = json.loads(out.stdout)
    assert set(data) == BOUNDS_KEYS
    assert data["lower"] == [pytest.approx(0.0)] and data["upper"] == [pytest.approx(2.0)]
    assert set(data["box"]) == {"lo", "hi", "n_boxes", "source"}
    assert set(data["tolerance"]) == {"atol", "rtol"}
    prop = _vnnlib(tmp_path / "p.vnnlib", 2, 1, UNIT_BOX + "\n(assert (>= Y_0 1.5))")
    out = run("verify", MODELS / "example_sum.onnx", prop, "--json")
    data = json.loads(out.stdout)
    assert out.returncode == 1 and set(data) == VERIFY_KEYS and data["verdict"] == "violated"
    assert sum(data["counterexample"]) >= 1.5
    readme = (MODELS.parent / "README.md").read_text()
    assert all(f"`{k}`" in readme for k in BOUNDS_KEYS | VERIFY_KEYS)


def test_plot_writes_the_histogram(tmp_path):
    png = tmp_path / "h.png"
    out = run(
        "bounds",
        MODELS / "cnn.onnx",
        "--lo",
        "0",
        "--hi",
        "1",
        "--outputs",
        "0,1",
        "--plot",
        png,
        "--quiet",
    )
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"written to {png}" in out.stdout
    bad = run(
        "bounds",
        MODELS / "cnn.onnx",
        "--lo",
        "0",
        "--hi",
        "1",
        "--plot",
        tmp_path / "missing" / "h.png",
    )
    # refused before the work (the bounds used to be computed, then lost)
    assert bad.returncode == 3 and "does not exist" in bad.stderr


def test_negative_numbers_in_any_notation_reach_their_option(capsys):
    # argparse alone reads "-1e-3" as an option name ("expected at least one argument")
    m = MODELS / "example_sum.onnx"  # y = x0 + x1
    code, out, _ = call(capsys, "bounds", m, *opts("--lo -1e-3 -2E-3 --hi 1 1 --json --inner off"))
    assert code == 0
    r = json.loads(out)
    assert r["lower"] == pytest.approx([-3e-3]) and r["upper"] == pytest.approx([2.0])

"""The command line, run as a subprocess: the foundation examples, JSON, info, and errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import MODELS


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "nnrange.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


EXAMPLES = [("example_sum", 0.0, 2.0), ("example_diff", -0.5, 1.0), ("example_two_layer", 0.0, 4.0)]


@pytest.mark.parametrize("name,lo,hi", EXAMPLES)
@pytest.mark.parametrize("suffix", [".onnx", ".keras"])
def test_examples_exact_through_cli(name, lo, hi, suffix):
    out = run("bounds", MODELS / f"{name}{suffix}", "--lo", "0", "--hi", "1", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["lower"] == [lo] and data["upper"] == [hi] and data["exact"] == [True]


def test_table_output_and_per_input_bounds():
    out = run("bounds", MODELS / "example_diff.onnx", "--lo", "0,0", "--hi", "1", "1")
    assert out.returncode == 0, out.stderr
    assert "inner lower" in out.stdout and "yes" in out.stdout


def test_info_lists_layers():
    out = run("info", MODELS / "cnn.onnx")
    assert out.returncode == 0, out.stderr
    assert "Conv" in out.stdout and "MaxPool" in out.stdout and "Dense" in out.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (("bounds", "missing.onnx", "--lo", "0", "--hi", "1"), "missing.onnx: file not found"),
        (
            ("bounds", MODELS / "example_sum.onnx", "--lo", "1", "--hi", "0"),
            "lo > hi at input dimension 0",
        ),
        (("bounds", MODELS / "example_sum.onnx", "--lo", "0", "0", "0", "--hi", "1"), "(3 values)"),
        (("bounds", MODELS / "example_sum.onnx", "--lo", "x", "--hi", "1"), "not a number: 'x'"),
        (
            ("bounds", MODELS / "example_sum.onnx", "--lo", "0", "--hi", "1", "--method", "magic"),
            "unknown method 'magic'",
        ),
        (("bounds", MODELS / "example_sum.onnx"), "required"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_bad_input_exit_code_3_and_message(args, message):
    out = run(*args)
    assert out.returncode == 3
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_unsupported_op_exit_code_3(tmp_path):
    import onnx
    from onnx_zoo import N, make

    path = tmp_path / "sin.onnx"
    onnx.save(make([N("Sin", ["x"], ["y"])], [1, 3]), path)
    out = run("bounds", path, "--lo", "0", "--hi", "1")
    assert out.returncode == 3 and "Sin (node 'y')" in out.stderr

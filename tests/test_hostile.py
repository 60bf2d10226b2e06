"""Bad and hostile input, as an attacker or a careless user gives it: each case ends in
a subprocess within its time limit, with exit code 2, one line on stderr naming the
problem, no traceback and nothing written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

FAST, TORCH = 15, 90  # seconds: the slower limit is for cases that import torch


def _bomb(where: str) -> str:
    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    layer = "  - op: *a9\n" if where == "op" else "  - op: conv\n    kernel: *a9\n"
    return "input: [8]\nx:\n" + "".join(f"  {x}\n" for x in levels) + "layers:\n" + layer


FILES = {
    "nan.json": '{"input": [8], "layers": [{"op": "upsample", "scale": NaN}]}',
    "huge.json": '{"input": [' + "1" + "0" * 100 + '], "layers": [{"op": "conv", "kernel": 3}]}',
    "bomb_op.yaml": _bomb("op"),
    "bomb_kernel.yaml": _bomb("kernel"),
    "exits.py": "import sys\ndef build():\n    sys.exit(0)\n",
    "exits_on_import.py": "import sys\nsys.exit(3)\ndef build():\n    pass\n",
    "net.py": "from torch import nn\ndef build():\n    return nn.Conv2d(1, 1, 3)\n",
    "empty.pt": "",
}

CASES = [  # (id, arguments, what stderr must say, time limit)
    ("nan-scale-json", ["analyze", "nan.json"], "nan.json:1: layer 1: scale must be a finite",
     FAST),
    ("inf-scale-string", ["analyze", "upsample(1e999)", "--input", "8"], "finite", FAST),
    ("input-1e12", ["analyze", "conv(3)", "--input", "1000000000000"], "beyond the limit",
     FAST),
    ("input-1e100-spec", ["analyze", "huge.json"], "beyond the limit", FAST),
    ("upsample-size-1e12", ["analyze", "upsample(size=1000000000000)", "--input", "8"],
     "upsample1", FAST),
    ("adaptivepool-1e12", ["analyze", "adaptivepool(1000000000000)", "--input", "8"],
     "adaptivepool1", FAST),
    ("pixelshuffle-1e12", ["analyze", "pixelshuffle(1000000000000)", "--input", "8"],
     "pixelshuffle1", FAST),
    ("convtranspose-stride-1e12", ["analyze", "convtranspose(1,s=1000000000000)", "--input",
                                   "8"], "beyond the limit", FAST),
    ("upsample-scale-1e308", ["analyze", "upsample(1e308)", "--input", "8"], "upsample1",
     FAST),
    ("repeat-1e11", ["analyze", "conv(1)*100000000000", "--input", "8"], "limit", FAST),
    ("yaml-bomb-op", ["analyze", "bomb_op.yaml"], "alias", FAST),
    ("yaml-bomb-kernel", ["analyze", "bomb_kernel.yaml"], "alias", FAST),
    ("dev-zero-json", ["analyze", "zero.json"], "not a regular file", FAST),
    ("dev-urandom-onnx", ["analyze", "rand.onnx"], "not a regular file", FAST),
    ("fifo-json", ["analyze", "fifo.json"], "not a regular file", FAST),
    ("fifo-onnx", ["analyze", "fifo.onnx"], "not a regular file", FAST),
    ("plot-in-missing-folder", ["analyze", "conv(3)", "--input", "8", "--plot",
                                "nodir/x.png"], "'nodir' does not exist", FAST),
    ("factory-exits", ["analyze", "exits.py:build", "--input", "8"], "sys.exit(0)", TORCH),
    ("factory-exits-on-import", ["analyze", "exits_on_import.py:build", "--input", "8"],
     "sys.exit(3)", TORCH),
    ("weights-empty", ["erf", "net.py:build", "--input", "9,9", "--samples", "1",
                       "--weights", "empty.pt"], "empty", TORCH),
    ("weights-fifo", ["erf", "net.py:build", "--input", "9,9", "--samples", "1",
                      "--weights", "fifo.pt"], "not a regular file", TORCH),
    ("weights-raw-pickle", ["erf", "net.py:build", "--input", "9,9", "--samples", "1",
                            "--weights", "raw.pt"], "weights_only", TORCH),
]


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    for name, text in FILES.items():
        (d / name).write_text(text)
    os.symlink("/dev/zero", d / "zero.json")
    os.symlink("/dev/urandom", d / "rand.onnx")
    for name in ("fifo.json", "fifo.onnx", "fifo.pt"):
        os.mkfifo(d / name)
    import datetime
    import pickle

    # a raw pickle of a global that weights_only refuses (harmless if it ever ran)
    (d / "raw.pt").write_bytes(pickle.dumps({"weight": datetime.date(2000, 1, 1)}))
    return d


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(place, case):
    _, args, needle, limit = case
    if limit == TORCH:
        pytest.importorskip("torch")
    before = sorted(os.listdir(place))
    proc = subprocess.run([sys.executable, "-m", "rfield.cli", *args], cwd=place,
                          capture_output=True, text=True, timeout=limit,
                          stdin=subprocess.DEVNULL)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("rfield: error: "), proc.stderr
    assert needle in lines[0] and len(lines[0]) < 400, lines[0]
    assert proc.stdout == "" and sorted(os.listdir(place)) == before

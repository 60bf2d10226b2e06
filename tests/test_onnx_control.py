"""Control flow and reversed slices in ONNX files: If (a constant condition takes its
branch; an input-dependent one is a global path beside the union of both branches),
Loop (reported, never an identity), and Slice with a negative step (a channel flip
changes no field; a spatial flip is reported). Hand-built files are checked against
ONNX's reference evaluator, torch exports against back-propagation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper  # noqa: E402

import rfield  # noqa: E402
from rfield.empirical.gradient import measure  # noqa: E402
from rfield.errors import RfieldError  # noqa: E402

from onnx_checks import assert_matches_oracle, model_1d, weight  # noqa: E402


def _branch(name: str, k: int):
    conv = helper.make_node("Conv", ["x", f"w{k}"], [f"y_{name}"], kernel_shape=[k],
                            pads=[k // 2, k // 2], name=f"conv{k}")
    return helper.make_graph([conv], name, [], [
        helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, None)])


@pytest.mark.parametrize("cond", [True, False])
def test_a_constant_condition_reads_its_branch_alone(tmp_path, cond):
    nodes = [helper.make_node("Constant", [], ["c"], value=helper.make_tensor(
                 "c", TensorProto.BOOL, [], [cond])),
             helper.make_node("If", ["c"], ["y"], then_branch=_branch("then", 3),
                              else_branch=_branch("else", 5), name="if")]
    model = model_1d(nodes, 12, [weight("w3", [1, 1, 3]), weight("w5", [1, 1, 5])])
    a = assert_matches_oracle(model, 12, tmp_path / "if.onnx")
    assert a.field().rf == ((3,) if cond else (5,))
    assert not a.field().is_global and not a.graph.unknown_ops


def _export(module, path, size, script=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = torch.jit.script(module) if script else module
        torch.onnx.export(m, (torch.zeros(1, 3, *size),), str(path), dynamo=False,
                          opset_version=17)
    return str(path)


class Branchy(torch.nn.Module):
    """Which convolution runs depends on the input's mean."""

    def __init__(self, force: int = 0):
        super().__init__()
        self.force = force
        self.a = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.b = torch.nn.Conv2d(3, 4, (5, 1), padding=(2, 0))
        self.post = torch.nn.Conv2d(4, 4, 3, stride=2)

    def forward(self, x):
        take_a = bool(x.mean() > 0) if self.force == 0 else self.force > 0
        if take_a:
            y = self.a(x)
        else:
            y = self.b(x)
        return self.post(y)


def test_an_input_dependent_condition_is_global_beside_the_union(tmp_path):
    size = (19, 17)
    a = rfield.analyze(_export(Branchy(), tmp_path / "if.onnx", size, script=True))
    f = a.field()
    assert f.is_global and not a.graph.unknown_ops
    # the local field: the union of the fields of the two branches, each measured
    boxes = []
    for force in (1, -1):
        got = measure(Branchy(force).eval(), (1, 3, *size), [""], {"": [(4, 4)]})[""][0]
        boxes.append(got.box)
    union = [(min(lo for lo, _ in axis), max(hi for _, hi in axis)) for axis in zip(*boxes)]
    assert all(lo > 0 and hi < n - 1 for (lo, hi), n in zip(union, size))  # not clipped
    assert f.local_rf == tuple(hi - lo + 1 for lo, hi in union)
    assert f.local_jump == (2, 2)
    assert a.box(a.graph.last(), (4, 4)).ranges == ((0, 18), (0, 16))


class Loopy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        for _ in range(int(x.sum() > 0) + 1):
            x = self.c(x)
        return x


def test_a_loop_is_reported_and_never_an_identity(tmp_path):
    path = _export(Loopy(), tmp_path / "loop.onnx", (15, 13), script=True)
    a = rfield.analyze(path)
    assert a.field().is_global and "Loop" in a.graph.unknown_ops
    with pytest.raises(RfieldError, match="Loop"):
        rfield.analyze(path, strict=True)


class Flips(torch.nn.Module):
    def __init__(self, spatial: bool):
        super().__init__()
        self.spatial = spatial
        self.c = torch.nn.Conv2d(3, 4, 3, stride=2)

    def forward(self, x):
        if self.spatial:  # test-time augmentation: the mirrored image, mirrored back
            return self.c(x) + self.c(x.flip(-1)).flip(-1)
        return self.c(x.flip(1))  # RGB to BGR


def test_a_channel_flip_changes_no_field(tmp_path):
    size = (17, 15)
    a = rfield.analyze(_export(Flips(False), tmp_path / "bgr.onnx", size))
    assert not a.graph.unknown_ops
    out = a.graph.nodes[a.graph.last()].size
    units = [tuple(np.array(out) // 2), (0, 0), tuple(np.array(out) - 1)]
    for got in measure(Flips(False).eval(), (1, 3, *size), [""], {"": units})[""]:
        assert a.box(a.graph.last(), got.unit).ranges == got.box


def test_a_spatial_flip_is_reported_not_guessed(tmp_path):
    a = rfield.analyze(_export(Flips(True), tmp_path / "tta.onnx", (17, 15)))
    assert a.field().is_global
    assert any("negative step" in op for op in a.graph.unknown_ops)


class Shrink(torch.nn.Module):
    """A convolution, an antialiased shrink, another convolution."""

    def __init__(self, mode: str, **how):
        super().__init__()
        self.mode, self.how = mode, how
        self.a = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.b = torch.nn.Conv2d(4, 4, 3)

    def forward(self, x):
        y = torch.nn.functional.interpolate(self.a(x), mode=self.mode, antialias=True,
                                            **self.how)
        return self.b(y)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("how", [{"scale_factor": 0.5}, {"size": (7, 9)},
                                 {"scale_factor": (0.25, 0.75)}])
def test_antialias_shrink_torch_and_its_onnx_export(tmp_path, mode, how):
    """PyTorch's antialias (dropping taps past the border) and ONNX's (reading the
    edge there) read the same indices: the torch front-end and the dynamo export both
    equal back-propagation through the module."""
    size = (32, 36)
    model = Shrink(mode, **how).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx_path = tmp_path / "aa.onnx"
        torch.onnx.export(model, (torch.zeros(1, 3, *size),), str(onnx_path), dynamo=True,
                          opset_version=18)
    for a in (rfield.analyze(model, size), rfield.analyze(str(onnx_path))):
        assert not a.graph.unknown_ops
        out = a.graph.nodes[a.graph.last()].size
        units = [(0, 0), tuple(s // 2 for s in out), tuple(s - 1 for s in out), (1, 2)]
        for got in measure(model, (1, 3, *size), [""], {"": units})[""]:
            assert a.box(a.graph.last(), got.unit).ranges == got.box, (a.graph.provenance.source,
                                                                       got.unit)

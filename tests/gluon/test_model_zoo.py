"""gluon.model_zoo.vision (frontend/gluon/model_zoo/) against MXNet 1.9.1.

Fixtures, recorded with the real mxnet==1.9.1 wheel by a script kept outside the repo:
- model_zoo_params.json.gz: for every model of `get_model`, its block prefix, its parameter names (less
  the prefix) with shapes after shape inference on a 1x3x224x224 (Inception: 299) input, and the structural
  names `save_parameters` writes;
- model_zoo_outputs.npz: each family's output on a seeded input, its parameters set by `_synthetic` (the
  same rule ran under MXNet), and the output of a tiny DenseNet whose MXNet-initialized parameters MXNet
  saved to model_zoo_densenet_tiny.params.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import ember as mx
from ember.base import MXNetError
from ember.gluon.model_zoo import model_store, vision

HERE = Path(__file__).parent
PARAMS = json.loads(gzip.decompress((HERE / "model_zoo_params.json.gz").read_bytes()))
OUTPUTS = np.load(HERE / "model_zoo_outputs.npz")

# parameter kind -> uniform range of its synthetic values (None: He-uniform by fan-in)
RANGES = {"weight": None, "bias": (-0.1, 0.1), "gamma": (0.5, 1.5), "beta": (-0.3, 0.3),
          "running_mean": (-0.2, 0.2), "running_var": (0.5, 1.5)}  # fmt: skip

# recorded case -> (vision constructor, its arguments, input side)
FORWARD_CASES = {
    "resnet18_v1": ("resnet18_v1", {}, 32),
    "resnet18_v2": ("resnet18_v2", {}, 32),
    "squeezenet1_1": ("squeezenet1_1", {}, 224),
    "mobilenet0_25": ("mobilenet0_25", {}, 32),
    "mobilenet_v2_0_25": ("mobilenet_v2_0_25", {}, 32),
    "vgg11_bn": ("vgg11_bn", {"classes": 10}, 32),
    "alexnet": ("alexnet", {"classes": 10}, 64),
    "densenet_small": ("DenseNet", {"num_init_features": 8, "growth_rate": 4, "block_config": [2, 2],
                                    "classes": 10}, 56),
    "inceptionv3": ("inception_v3", {"classes": 10}, 299),
}  # fmt: skip


def _synthetic(name, shape):
    """Seeded values for the parameter with structural name `name` (seed: crc32 of the name)."""
    rng = np.random.RandomState(zlib.crc32(name.encode()))
    bounds = RANGES[name.rsplit(".", 1)[-1]]
    if bounds is None:
        bound = np.sqrt(6.0 / int(np.prod(shape[1:])))
        bounds = (-bound, bound)
    return rng.uniform(*bounds, shape).astype("float32")


def _input(side):
    return np.random.RandomState(0).uniform(-1, 1, (1, 3, side, side)).astype("float32")


def _build(case):
    ctor, kwargs, side = FORWARD_CASES[case]
    return getattr(vision, ctor)(**kwargs), _input(side)


def _assert_close(got, expected):
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * float(np.abs(expected).max()))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_names_and_shapes_match_mxnet(name):
    recorded = PARAMS[name]
    net = vision.get_model(name)
    net.initialize()
    side = 299 if name == "inceptionv3" else 224
    net.infer_shape(mx.nd.zeros((1, 3, side, side)))
    # the prefix's counter depends on how many such models the process built before
    assert re.sub(r"\d+_$", "", net.prefix) == re.sub(r"\d+_$", "", recorded["prefix"])
    got = {key[len(net.prefix) :]: list(p.shape) for key, p in net.collect_params().items()}
    assert got == recorded["params"]
    assert sorted(net._collect_params_with_prefix()) == recorded["structural"]


@pytest.mark.parametrize("case", sorted(FORWARD_CASES))
def test_forward_matches_mxnet(case):
    net, x = _build(case)
    net.initialize()
    net.infer_shape(mx.nd.array(x))
    for name, param in net._collect_params_with_prefix().items():
        param.set_data(mx.nd.array(_synthetic(name, param.shape)))
    _assert_close(net(mx.nd.array(x)).asnumpy(), OUTPUTS[case])


def test_hybridized_resnet_matches_mxnet():
    net, x = _build("resnet18_v1")
    net.initialize()
    net.infer_shape(mx.nd.array(x))
    for name, param in net._collect_params_with_prefix().items():
        param.set_data(mx.nd.array(_synthetic(name, param.shape)))
    net.hybridize()
    _assert_close(net(mx.nd.array(x)).asnumpy(), OUTPUTS["resnet18_v1"])


def test_loads_parameters_saved_by_mxnet():
    net = vision.DenseNet(8, 4, [2, 2], classes=10)
    net.load_parameters(str(HERE / "model_zoo_densenet_tiny.params"))
    _assert_close(net(mx.nd.array(_input(56))).asnumpy(), OUTPUTS["densenet_tiny_saved"])


def test_get_model_is_case_insensitive_and_rejects_unknown_names():
    assert isinstance(vision.get_model("ResNet18_V1"), vision.ResNetV1)
    assert isinstance(vision.get_model("MobileNetV2_0.25"), vision.MobileNetV2)
    with pytest.raises(MXNetError, match=r"Model resnet19_v1 is not supported. Available options are") as err:
        vision.get_model("resnet19_v1")
    assert isinstance(err.value, ValueError)  # what MXNet raises
    assert "\n\tresnet18_v1\n" in str(err.value)


def test_bad_family_arguments_raise():
    with pytest.raises(MXNetError, match=r"Invalid number of layers: 19"):
        vision.get_resnet(1, 19)
    with pytest.raises(MXNetError, match=r"Invalid resnet version: 3"):
        vision.get_resnet(3, 18)
    with pytest.raises(MXNetError, match=r"Unsupported SqueezeNet version 2.0"):
        vision.SqueezeNet("2.0")
    with pytest.raises(MXNetError, match=r"Invalid number of layers: 12"):
        vision.get_vgg(12)


@pytest.mark.parametrize(
    "build,file_name",
    [
        (lambda root: vision.resnet18_v1(pretrained=True, root=root), "resnet18_v1-a0666292.params"),
        (lambda root: vision.get_model("vgg11_bn", pretrained=True, root=root), "vgg11_bn-ee79a809.params"),
        (lambda root: vision.get_mobilenet(0.5, pretrained=True, root=root), "mobilenet0.5-8e9d539c.params"),
        (lambda root: vision.mobilenet_v2_1_0(pretrained=True, root=root), "mobilenetv2_1.0-36da4ff1.params"),
        (lambda root: vision.squeezenet1_1(pretrained=True, root=root), "squeezenet1.1-33ba0f93.params"),
        (lambda root: vision.inception_v3(pretrained=True, root=root), "inceptionv3-ed47ec45.params"),
    ],
)
def test_pretrained_without_the_file_names_the_expected_path(tmp_path, build, file_name):
    with pytest.raises(MXNetError, match=re.escape(os.path.join(str(tmp_path), file_name))):
        build(str(tmp_path))


def test_default_root_follows_mxnet_home(tmp_path):
    code = "from ember.gluon.model_zoo import vision\nvision.alexnet(pretrained=True)"
    env = dict(os.environ, MXNET_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert os.path.join(str(tmp_path), "models", "alexnet-44335d1f.params") in done.stderr


def _store_mobilenet(monkeypatch, root):
    """Save a mobilenet0.25 with synthetic parameters as the store's file under `root` (its sha1 put in
    the table); return the saved net."""
    net = vision.mobilenet0_25()
    net.initialize()
    net.infer_shape(mx.nd.zeros((1, 3, 32, 32)))
    for name, param in net._collect_params_with_prefix().items():
        param.set_data(mx.nd.array(_synthetic(name, param.shape)))
    net(mx.nd.zeros((1, 3, 32, 32)))  # finishes the deferred initialization with the values set
    saved = root / "saved.params"
    net.save_parameters(str(saved))
    sha1 = hashlib.sha1(saved.read_bytes()).hexdigest()
    monkeypatch.setitem(model_store._model_sha1, "mobilenet0.25", sha1)
    saved.rename(root / f"mobilenet0.25-{sha1[:8]}.params")
    return net


def test_pretrained_loads_the_stored_file(tmp_path, monkeypatch):
    saved = _store_mobilenet(monkeypatch, tmp_path)
    net = vision.get_model("mobilenet0.25", pretrained=True, root=str(tmp_path))
    x = mx.nd.array(_input(32))
    np.testing.assert_array_equal(net(x).asnumpy(), saved(x).asnumpy())


def test_pretrained_file_with_a_wrong_sha1_is_refused(tmp_path, monkeypatch):
    _store_mobilenet(monkeypatch, tmp_path)
    good = model_store._model_sha1["mobilenet0.25"]
    monkeypatch.setitem(model_store._model_sha1, "mobilenet0.25", good[:8] + "0" * 32)
    with pytest.raises(MXNetError, match=r"does not have the expected sha1 " + good[:8] + "0{32}"):
        vision.mobilenet0_25(pretrained=True, root=str(tmp_path))

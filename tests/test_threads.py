"""Compiled code on several threads: every thread count from 1 to 4 gives the same bytes (each element
is computed by one thread with the same code), EMBER_NUM_THREADS sets the pool size, and large stages
really are split across threads."""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember.codegen.parallel import stage_split
from ember.compiler import run
from ember.compiler.build import build_program


def _model():
    data, weight = mx.sym.var("data"), mx.sym.var("weight")
    hidden = mx.sym.relu(mx.sym.dot(data, weight))  # a GEMM with a relu epilogue
    scores = mx.sym.softmax(mx.sym.tanh(hidden) * 2 + mx.sym.exp(-hidden), axis=-1)  # row reductions
    return mx.sym.Group([scores, mx.sym.sum(hidden, axis=0)])


SHAPES = {"data": (203, 97), "weight": (97, 301)}


def _feeds():
    rng = np.random.default_rng(0)
    return {name: rng.uniform(-1, 1, shape).astype(np.float32) for name, shape in SHAPES.items()}


def test_the_big_stages_are_split_across_threads():
    program = build_program(_model()._graph, SHAPES).program
    splits = [stage_split(stage) for kernel in program.kernels for stage in kernel.stages]
    assert any(s.parallel for s in splits)


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_every_thread_count_gives_the_same_bytes(monkeypatch, threads):
    feeds = _feeds()
    monkeypatch.setenv("EMBER_NUM_THREADS", "1")
    baseline = [
        a.tobytes()
        for a in mx.compile(_model(), {"data": SHAPES["data"]}, {"weight": feeds["weight"]})(
            data=feeds["data"]
        )
    ]
    monkeypatch.setenv("EMBER_NUM_THREADS", str(threads))
    model = mx.compile(_model(), {"data": SHAPES["data"]}, {"weight": feeds["weight"]})
    outputs = model(data=feeds["data"])
    assert model._exe._library.ember_pool_threads() == threads
    assert [a.tobytes() for a in outputs] == baseline
    want = run(_model()._graph, feeds)
    for got, expected in zip(outputs, want):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_oversubscribed_pools_give_the_same_bytes_run_after_run(monkeypatch):
    """Six threads on this machine's cores: workers are often not scheduled when a job starts, so the
    caller and whichever workers wake claim the chunks (late workers must find nothing of an older job
    to claim). Every run must still give the single-thread bytes."""
    feeds = _feeds()
    monkeypatch.setenv("EMBER_NUM_THREADS", "1")
    single = mx.compile(_model(), {"data": SHAPES["data"]}, {"weight": feeds["weight"]})
    baseline = [a.tobytes() for a in single(data=feeds["data"])]
    monkeypatch.setenv("EMBER_NUM_THREADS", "6")
    model = mx.compile(_model(), {"data": SHAPES["data"]}, {"weight": feeds["weight"]})
    for _ in range(300):
        assert [a.tobytes() for a in model(data=feeds["data"])] == baseline

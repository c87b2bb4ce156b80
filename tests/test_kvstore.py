"""mx.kv: init/push/pull/pushpull/broadcast against hand-computed values, updaters, optimizer states,
gradient compression on 'device' stores, and the errors MXNet 1.9.1 raises."""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
import ember.kvstore as kv
from ember.base import MXNetError

SHAPE = (2, 3)


def full(value, shape=SHAPE) -> mx.nd.NDArray:
    return mx.nd.array(np.full(shape, value, dtype=np.float32))


def pulled(store, key, shape=SHAPE) -> np.ndarray:
    out = mx.nd.zeros(shape)
    store.pull(key, out=out)
    return out.asnumpy()


def test_create_gives_single_process_stores_of_the_named_type():
    for name in (
        "local",
        "device",
        "local_update_cpu",
        "local_allreduce_cpu",
        "local_allreduce_device",
        "LOCAL",
    ):
        store = kv.create(name)
        assert isinstance(store, kv.KVStore)
        assert (store.type, store.rank, store.num_workers) == (name.lower(), 0, 1)
    assert kv.create().type == "local"
    assert kv.create().is_capable(kv.KVStoreBase.OPTIMIZER) is True


@pytest.mark.parametrize("name", ["dist_sync", "dist_device_sync", "dist_async", "nccl", "horovod", "byteps"])
def test_distributed_types_point_to_distributed_training(name):
    message = (
        f"kvstore type '{name}' is distributed; distributed kvstores come with the distributed-training issue"
    )
    with pytest.raises(mx.MXNetError, match=message):
        kv.create(name)


def test_create_takes_a_string_name():
    with pytest.raises(TypeError, match="name must be a string, not int"):
        kv.create(3)


def test_init_then_pull_copies_the_value_out():
    store = kv.create("local")
    value = full(2.0)
    store.init(3, value)
    value[:] = 7.0  # the store keeps its own copy
    np.testing.assert_array_equal(pulled(store, 3), np.full(SHAPE, 2.0))


def test_push_of_a_list_stores_the_sum_and_pull_fills_every_out():
    store = kv.create("local")
    store.init("w", full(1.0))
    store.push("w", [full(1.0), full(2.0), full(4.0)])  # one value per device: summed
    outs = [mx.nd.zeros(SHAPE) for _ in range(3)]
    store.pull("w", out=outs)
    for out in outs:
        np.testing.assert_array_equal(out.asnumpy(), np.full(SHAPE, 7.0))  # replaced, not accumulated


def test_lists_of_keys_take_one_value_or_one_list_per_key():
    store = kv.create("device")
    keys = [5, 7, 9]
    store.init(keys, [full(k) for k in keys])
    store.push(keys, [full(1.0), [full(1.0), full(2.0)], full(10.0)])
    outs = [mx.nd.zeros(SHAPE), [mx.nd.zeros(SHAPE), mx.nd.zeros(SHAPE)], mx.nd.zeros(SHAPE)]
    store.pull(keys, out=outs)
    assert [o.asnumpy()[0, 0] for o in (outs[0], *outs[1], outs[2])] == [1.0, 3.0, 3.0, 10.0]


def test_a_key_repeated_in_one_push_sums_its_values():
    store = kv.create()
    store.init(1, full(0.0))
    store.push([1, 1], [full(2.0), full(3.0)])
    np.testing.assert_array_equal(pulled(store, 1), np.full(SHAPE, 5.0))


def test_a_push_without_init_creates_an_int_key_when_no_updater_is_set():
    store = kv.create()
    store.push(4, [full(1.5), full(1.5)])  # MXNet stores the sum
    np.testing.assert_array_equal(pulled(store, 4), np.full(SHAPE, 3.0))


def test_the_updater_gets_the_key_the_summed_push_and_the_stored_value():
    store = kv.create()
    store.init(3, full(2.0))
    calls = []

    def update(key, merged, stored):
        calls.append((key, merged.asnumpy()[0, 0], stored.asnumpy()[0, 0]))
        stored += merged * 2

    store._set_updater(update)
    store.push(3, [full(1.0), full(0.5)])
    assert calls == [(3, 1.5, 2.0)]
    np.testing.assert_array_equal(pulled(store, 3), np.full(SHAPE, 5.0))  # 2 + 2 * 1.5


def test_the_updater_gets_a_str_key_as_bytes_as_in_mxnet():
    store = kv.create()
    store.init("fc_weight", full(0.0))
    keys = []
    store._set_updater(lambda key, merged, stored: keys.append(key))
    store.push("fc_weight", full(1.0))
    assert keys == [b"fc_weight"]


def test_set_optimizer_sgd_updates_the_stored_weight_by_lr_times_grad():
    # MXNET_COMPAT.md 10.3 [observed]: init 1, push [1, 2] -> 3; then with SGD lr 0.1, push 1 -> 2.9
    store = kv.create("local")
    store.init(0, full(1.0))
    store.push(0, [full(1.0), full(2.0)])
    np.testing.assert_array_equal(pulled(store, 0), np.full(SHAPE, 3.0))
    store.set_optimizer(mx.optimizer.SGD(learning_rate=0.1))
    store.push(0, full(1.0))
    np.testing.assert_allclose(pulled(store, 0), np.full(SHAPE, 2.9), rtol=1e-6)


def test_the_documented_set_optimizer_example():
    # MXNet's docstring: zeros (2, 2), default SGD (lr 0.01), push ones -> -0.01 everywhere
    store = kv.create()
    weight = mx.nd.zeros((2, 2))
    store.init(3, weight)
    store.set_optimizer(mx.optimizer.SGD())
    store.push(3, mx.nd.ones((2, 2)))
    store.pull(3, out=weight)
    np.testing.assert_allclose(weight.asnumpy(), np.full((2, 2), -0.01), rtol=1e-6)


def test_pushpull_writes_into_out_or_back_into_the_values():
    store = kv.create()
    store.init(["a", "b"], [full(0.0), full(0.0)])
    out = mx.nd.zeros(SHAPE)
    store.pushpull("a", full(8.0), out=out)
    np.testing.assert_array_equal(out.asnumpy(), np.full(SHAPE, 8.0))
    values = [full(1.0), full(3.0)]
    store.pushpull("b", values)  # no out: every pushed array receives the sum
    assert [v.asnumpy()[0, 0] for v in values] == [4.0, 4.0]


def test_broadcast_stores_the_value_and_fills_out_once_per_key():
    store = kv.create()
    out = mx.nd.zeros(SHAPE)
    store.broadcast("3", full(2.0), out=out)
    np.testing.assert_array_equal(out.asnumpy(), np.full(SHAPE, 2.0))
    with pytest.raises(mx.MXNetError, match="duplicate init of key '3'"):
        store.broadcast("3", full(5.0), out=out)


def test_optimizer_states_round_trip_restores_momentum(tmp_path):
    def sgd_store(weight: float):
        store = kv.create()
        store.init(0, full(weight))
        store.set_optimizer(mx.optimizer.SGD(learning_rate=0.1, momentum=0.9))
        return store

    store = sgd_store(1.0)
    store.push(0, full(1.0))  # m = -0.1, w = 0.9
    store.save_optimizer_states(tmp_path / "kv.states")
    store.push(0, full(1.0))  # m = 0.9 * -0.1 - 0.1 = -0.19, w = 0.71
    np.testing.assert_allclose(pulled(store, 0), np.full(SHAPE, 0.71), rtol=1e-6)

    restored = sgd_store(0.9)  # the weight after the first step, and the momentum saved then
    restored.load_optimizer_states(tmp_path / "kv.states")
    restored.push(0, full(1.0))
    np.testing.assert_allclose(pulled(restored, 0), np.full(SHAPE, 0.71), rtol=1e-6)

    unrestored = sgd_store(0.9)  # without the saved momentum the step is -0.1
    unrestored.push(0, full(1.0))
    np.testing.assert_allclose(pulled(unrestored, 0), np.full(SHAPE, 0.8), rtol=1e-6)


def test_dump_optimizer_saves_the_optimizer_with_its_states(tmp_path):
    store = kv.create()
    store.init(0, full(1.0))
    store.set_optimizer(mx.optimizer.SGD(learning_rate=0.5, momentum=0.9))
    store.push(0, full(1.0))
    store.save_optimizer_states(tmp_path / "kv.states", dump_optimizer=True)
    other = kv.create()
    other.init(0, full(0.5))
    other.set_optimizer(mx.optimizer.SGD(learning_rate=0.01))
    other.load_optimizer_states(tmp_path / "kv.states")
    assert other._updater.optimizer.lr == 0.5 and other._updater.optimizer.momentum == 0.9


def test_optimizer_states_need_an_optimizer_and_a_readable_file(tmp_path):
    store = kv.create()
    with pytest.raises(mx.MXNetError, match="no optimizer is set on this store"):
        store.save_optimizer_states(tmp_path / "kv.states")
    store._set_updater(lambda key, merged, stored: None)
    with pytest.raises(mx.MXNetError, match="keeps no optimizer states"):
        store.save_optimizer_states(tmp_path / "kv.states")
    store.set_optimizer(mx.optimizer.SGD())
    with pytest.raises(mx.base.ArtifactError, match="cannot load optimizer states from .*missing.states"):
        store.load_optimizer_states(tmp_path / "missing.states")


def test_init_twice_for_one_key_is_an_error():
    store = kv.create()
    store.init(3, full(1.0))
    with pytest.raises(mx.MXNetError, match="duplicate init of key 3"):
        store.init(3, full(2.0))
    with pytest.raises(mx.MXNetError, match="duplicate init of key 4"):
        store.init([4, 4], [full(1.0), full(2.0)])
    np.testing.assert_array_equal(pulled(store, 3), np.full(SHAPE, 1.0))


def test_shapes_must_match_the_stored_value():
    store = kv.create()
    store.init("w", full(1.0))
    with pytest.raises(
        mx.base.ShapeError, match=r"push: key 'w' holds shape \(2, 3\), got a value of shape \(3, 2\)"
    ):
        store.push("w", full(1.0, (3, 2)))
    with pytest.raises(
        mx.base.ShapeError, match=r"pull: key 'w' holds shape \(2, 3\), but an out array has shape \(6,\)"
    ):
        store.pull("w", out=mx.nd.zeros((6,)))


def test_keys_are_ints_or_strs_never_mixed():
    store = kv.create()
    with pytest.raises(mx.MXNetError, match=r"the keys \[1, 'b'\] mix ints and strs"):
        store.init([1, "b"], [full(1.0), full(1.0)])
    store.init(1, full(1.0))
    with pytest.raises(mx.MXNetError, match="key 'b' is str but this store's keys are ints"):
        store.init("b", full(1.0))
    with pytest.raises(TypeError, match="a key is an int or a str, not float 1.5"):
        store.push(1.5, full(1.0))


def test_pull_and_updated_push_of_unknown_keys_are_errors():
    store = kv.create()
    with pytest.raises(mx.MXNetError, match="pull: key 3 has not been initialized"):
        store.pull(3, out=mx.nd.zeros(SHAPE))
    with pytest.raises(mx.MXNetError, match="give the arrays to pull into as out="):
        store.pull(3)
    store.set_optimizer(mx.optimizer.SGD())
    with pytest.raises(mx.MXNetError, match="push: key 3 has not been initialized"):
        store.push(3, full(1.0))
    other = kv.create()
    other.init("a", full(1.0))
    with pytest.raises(mx.MXNetError, match="push: key 'b' has not been initialized"):
        other.push("b", full(1.0))


def test_values_and_keys_must_pair_up():
    store = kv.create()
    with pytest.raises(mx.MXNetError, match="3 keys need a list of 3 values, got 2"):
        store.init([1, 2, 3], [full(1.0), full(1.0)])
    with pytest.raises(TypeError, match="the values of key 1 must be NDArrays, not ndarray"):
        store.init(1, np.ones(SHAPE))


def test_row_sparse_pull_is_unsupported():
    with pytest.raises(mx.MXNetError, match="sparse storage is not supported"):
        kv.create().row_sparse_pull(0, out=mx.nd.zeros(SHAPE), row_ids=mx.nd.array([0]))


def test_gradient_compression_is_refused_by_local_stores_and_checked():
    with pytest.raises(mx.MXNetError, match="Gradient compression is not supported for this type of kvstore"):
        kv.create("local").set_gradient_compression({"type": "2bit"})
    store = kv.create("device")
    with pytest.raises(mx.MXNetError, match="unknown type '3bit'"):
        store.set_gradient_compression({"type": "3bit"})
    with pytest.raises(mx.MXNetError, match="needs a threshold above 0"):
        store.set_gradient_compression({"type": "2bit", "threshold": 0})
    with pytest.raises(mx.MXNetError, match="needs a 'type'"):
        store.set_gradient_compression({"threshold": 0.5})


def test_2bit_compression_sends_thresholds_and_keeps_residuals():
    store = kv.create("device")
    store.set_gradient_compression({"type": "2bit", "threshold": 0.5})
    store.init(0, mx.nd.zeros((4,)))
    grad = mx.nd.array([0.3, 0.7, -0.6, -0.2])
    store.push(0, grad)  # residual 0.3, 0.7, -0.6, -0.2 -> sent 0, 0.5, -0.5, 0; kept 0.3, 0.2, -0.1, -0.2
    np.testing.assert_allclose(pulled(store, 0, (4,)), [0.0, 0.5, -0.5, 0.0])
    store.push(0, grad)  # residual 0.6, 0.9, -0.7, -0.4 -> sent 0.5, 0.5, -0.5, 0
    np.testing.assert_allclose(pulled(store, 0, (4,)), [0.5, 0.5, -0.5, 0.0])
    store.push(0, [grad, grad])  # each source has its own residual: source 1 starts from zero
    np.testing.assert_allclose(pulled(store, 0, (4,)), [0.0 + 0.0, 0.5 + 0.5, -0.5 - 0.5, -0.5 + 0.0])


def test_1bit_compression_sends_plus_or_minus_one():
    store = kv.create("device")
    store.set_gradient_compression({"type": "1bit", "threshold": 0.0})
    store.init(0, mx.nd.zeros((3,)))
    store.push(0, mx.nd.array([0.3, -0.2, 0.0]))  # > 0 -> +1, else -1
    np.testing.assert_allclose(pulled(store, 0, (3,)), [1.0, -1.0, -1.0])


def test_registered_store_classes_are_created_by_name():
    @kv.KVStoreBase.register
    class MyStore(kv.KVStoreBase):
        pass

    try:
        assert type(kv.create("MyStore")) is MyStore
    finally:
        del kv.KVStoreBase.kv_registry["mystore"]


# -- Module with a kvstore (MXNet's model._create_kvstore) ---------------------------------------------


def _linear_fit(kvstore, tmp_path=None):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x @ np.arange(1, 6) + 0.5).astype(np.float32)
    data, label = mx.sym.Variable("data"), mx.sym.Variable("lin_reg_label")
    net = mx.sym.LinearRegressionOutput(
        mx.sym.FullyConnected(data, num_hidden=1, name="fc"), label, name="lin"
    )
    module = mx.mod.Module(net, label_names=["lin_reg_label"])
    mx.random.seed(1)
    module.fit(
        mx.io.NDArrayIter(x, y, batch_size=16, label_name="lin_reg_label"), num_epoch=2, kvstore=kvstore,
        optimizer="sgd", optimizer_params={"learning_rate": 0.05, "momentum": 0.9},
    )  # fmt: skip
    return module


def test_module_updates_through_a_kvstore_object_as_the_local_updater_does():
    store = mx.kv.create("local")
    on_store = _linear_fit(store)
    local = _linear_fit("local")
    assert on_store._kvstore is store and local._kvstore is None
    np.testing.assert_allclose(
        on_store.get_params()[0]["fc_weight"].asnumpy(),
        local.get_params()[0]["fc_weight"].asnumpy(),
        rtol=1e-5,
    )


def test_module_optimizer_states_go_through_its_kvstore(tmp_path):
    store = mx.kv.create("local")
    module = _linear_fit(store)
    momentum = {k: v.asnumpy().copy() for k, v in store._updater.states.items()}
    assert momentum and all(np.abs(v).sum() > 0 for v in momentum.values())
    first, second = tmp_path / "first.states", tmp_path / "second.states"
    module.save_optimizer_states(str(first))
    for state in store._updater.states.values():
        state[:] = 0
    module.load_optimizer_states(str(first))
    for key, value in store._updater.states.items():
        np.testing.assert_array_equal(value.asnumpy(), momentum[key])
    module.save_optimizer_states(str(second))
    assert first.read_bytes() == second.read_bytes()


def test_module_rejects_a_kvstore_of_another_type():
    with pytest.raises(TypeError, match="kvstore must be KVStore, str or None"):
        _linear_fit(3)


def test_module_with_a_distributed_kvstore_name_says_it_is_not_there_yet():
    with pytest.raises(MXNetError, match="distributed"):
        _linear_fit("dist_sync")

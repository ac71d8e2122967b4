"""Dopamine JAX DQN / Rainbow checkpoints converted into anew QNetworks give Dopamine's outputs."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anew.agents.networks import NatureCNN, QNetwork
from anew.errors import AnewError
from anew.reincarnation.formats.dopamine_checkpoint import (
    complete_iterations,
    convert_dopamine_checkpoint,
    dopamine_params,
    load_dopamine_bundle,
    load_dopamine_network,
    nature_state_dict,
)
from anew.reincarnation.formats.safe_pickle import UnsafePickleError

torch.set_num_threads(1)
ATOL = 1e-5


@pytest.fixture(scope="module")
def dqn_dir(fixtures_dir):
    return fixtures_dir / "dopamine" / "jax_dqn_pong"


@pytest.fixture(scope="module")
def rainbow_dir(fixtures_dir):
    return fixtures_dir / "dopamine" / "jax_rainbow_breakout"


def test_dqn_q_values_and_layers_match_dopamine(dqn_dir):
    expected = np.load(dqn_dir / "q_values_expected.npz")
    net = load_dopamine_network(dqn_dir / "checkpoints", kind="dqn")
    assert not net.training
    with torch.no_grad():
        out = net(torch.from_numpy(expected["states"]))
        assert out.q_values.shape == (8, 6) and out.probabilities is None
        np.testing.assert_allclose(out.q_values.numpy(), expected["q_values"], rtol=0, atol=ATOL)

        # Layer by layer through anew's own NatureCNN modules: catches padding and flatten-order mistakes.
        torso = net.network.torso
        x = torch.from_numpy(expected["states"]).permute(0, 3, 1, 2).float() / 255.0
        for index, (conv, pad) in enumerate(zip((torso.conv0, torso.conv1, torso.conv2), NatureCNN.PADDINGS)):
            x = conv(F.pad(x, pad))
            np.testing.assert_allclose(x.permute(0, 2, 3, 1).numpy(), expected[f"conv{index}_out"], atol=ATOL)
            x = F.relu(x)
        np.testing.assert_allclose(
            x.permute(0, 2, 3, 1).reshape(8, -1).numpy(), expected["flatten_after_relu"], atol=ATOL
        )
        np.testing.assert_allclose(torso.dense(x.flatten(1)).numpy(), expected["dense0_out"], atol=ATOL)


def test_dqn_target_params_and_metadata(dqn_dir):
    expected = np.load(dqn_dir / "q_values_expected.npz")
    conversion = convert_dopamine_checkpoint(dqn_dir, kind="dqn", params="target")  # the run folder works too
    meta = conversion.metadata()
    assert (meta["num_actions"], meta["num_atoms"], meta["iteration"], meta["training_steps"]) == (
        6,
        1,
        3,
        892,
    )
    assert set(conversion.logs) == {f"iteration_{i}" for i in range(4)}
    network = QNetwork(NatureCNN(4), 6)
    network.load_state_dict(conversion.state_dict, strict=True)  # a normal anew state_dict
    with torch.no_grad():
        q = network(torch.from_numpy(expected["states"]).permute(0, 3, 1, 2))
    np.testing.assert_allclose(q.numpy(), expected["target_q_values"], rtol=0, atol=ATOL)
    assert not np.allclose(expected["target_q_values"], expected["q_values"], atol=ATOL)


def test_rainbow_q_values_probabilities_and_logits_match_dopamine(rainbow_dir):
    expected = np.load(rainbow_dir / "q_values_expected.npz")
    net = load_dopamine_network(rainbow_dir / "checkpoints", kind="rainbow")
    np.testing.assert_allclose(net.support.numpy(), expected["support"], rtol=0, atol=2e-6)
    with torch.no_grad():
        out = net(expected["states"])  # numpy input is fine too
    assert out.probabilities.shape == (8, 4, 51) and out.logits.shape == (8, 4, 51)
    np.testing.assert_allclose(out.q_values.numpy(), expected["q_values"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(out.probabilities.numpy(), expected["probabilities"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(out.logits.numpy(), expected["logits"], rtol=0, atol=ATOL)
    # QNetwork.logits is action-major (B, A, atoms), like Dopamine's reshape of Dense_1.
    with torch.no_grad():
        flat = net.network(torch.from_numpy(expected["states"]).permute(0, 3, 1, 2))
    np.testing.assert_allclose(flat.numpy(), expected["dense1_out"], rtol=0, atol=ATOL)

    target = load_dopamine_network(rainbow_dir, kind="rainbow", params="target")
    with torch.no_grad():
        out = target(expected["states"])
    np.testing.assert_allclose(out.q_values.numpy(), expected["target_q_values"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(out.probabilities.numpy(), expected["target_probabilities"], rtol=0, atol=ATOL)
    assert convert_dopamine_checkpoint(rainbow_dir, kind="rainbow").metadata()["v_min"] == -10.0


def test_wrong_kind_is_named(rainbow_dir):
    with pytest.raises(AnewError, match="kind='rainbow'"):
        load_dopamine_network(rainbow_dir, kind="dqn")
    with pytest.raises(AnewError, match="kind must be"):
        load_dopamine_network(rainbow_dir, kind="iqn")


def test_pre_linen_layer_names_convert_the_same(dqn_dir):
    bundle, _ = load_dopamine_bundle(dqn_dir / "checkpoints")
    linen = dopamine_params(bundle)
    old = {
        "Conv_0": linen["Conv_0"],
        "Conv_1": linen["Conv_1"],
        "Conv_2": linen["Conv_2"],
        "Dense_3": linen["Dense_0"],
        "Dense_4": linen["Dense_1"],
    }
    converted = nature_state_dict(dopamine_params({"online_params": old}))
    for name, tensor in nature_state_dict(linen).items():
        assert torch.equal(converted[name], tensor), name


def link_checkpoint(source, folder, iteration, sentinel=True):
    os.symlink(source, folder / f"ckpt.{iteration}")
    if sentinel:
        (folder / f"sentinel_checkpoint_complete.{iteration}").write_bytes(b"done")


def test_latest_complete_checkpoint_wins(dqn_dir, tmp_path):
    source = dqn_dir / "checkpoints" / "ckpt.3"
    link_checkpoint(source, tmp_path, 2)
    link_checkpoint(source, tmp_path, 10)
    link_checkpoint(source, tmp_path, 11, sentinel=False)  # written, but the run died before the sentinel
    (tmp_path / "sentinel_checkpoint_complete.12").write_bytes(b"done")  # sentinel without its ckpt
    assert complete_iterations(tmp_path) == [2, 10, 12]
    with pytest.raises(AnewError, match="ckpt.12 is missing"):
        load_dopamine_bundle(tmp_path)
    (tmp_path / "sentinel_checkpoint_complete.12").unlink()
    assert load_dopamine_bundle(tmp_path)[1] == 10
    assert load_dopamine_bundle(tmp_path, 2)[1] == 2
    with pytest.raises(AnewError, match="not complete"):
        load_dopamine_bundle(tmp_path, 11)


def test_bad_checkpoints_get_clear_errors(dqn_dir, tmp_path):
    with pytest.raises(AnewError, match="no complete Dopamine checkpoint"):
        load_dopamine_network(tmp_path)
    with pytest.raises(AnewError, match="not a folder"):
        load_dopamine_network(tmp_path / "missing")

    data = (dqn_dir / "checkpoints" / "ckpt.3").read_bytes()
    (tmp_path / "ckpt.1").write_bytes(data[: len(data) // 2])
    (tmp_path / "sentinel_checkpoint_complete.1").write_bytes(b"done")
    with pytest.raises(AnewError, match="truncated or corrupt"):
        load_dopamine_network(tmp_path)

    (tmp_path / "ckpt.1").write_bytes(pickle.dumps({"weights": np.zeros(3)}))
    with pytest.raises(AnewError, match="no 'online_params'"):
        load_dopamine_network(tmp_path)

    small = {"online_params": {"params": {"Dense_0": {"kernel": np.zeros((4, 2)), "bias": np.zeros(2)}}}}
    (tmp_path / "ckpt.1").write_bytes(pickle.dumps(small))
    with pytest.raises(AnewError, match="a Nature CNN has"):
        load_dopamine_network(tmp_path)


class _Touch:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "ckpt.4").write_bytes(pickle.dumps({"online_params": {}, "x": _Touch(marker)}))
    (tmp_path / "sentinel_checkpoint_complete.4").write_bytes(b"done")
    with pytest.raises(UnsafePickleError, match="system"):
        load_dopamine_network(tmp_path)
    assert not marker.exists()

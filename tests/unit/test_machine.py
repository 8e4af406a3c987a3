"""One place sets the thread counts of torch, onnxruntime, the tokenizers and OpenMP, and puts them back."""

from __future__ import annotations

import os

import pytest
import torch

from transferlearn.machine import THREAD_VARIABLES, thread_settings


def test_thread_settings_set_every_library_and_restore_it(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("RAYON_NUM_THREADS", "7")
    before = torch.get_num_threads()
    with thread_settings(1):
        assert torch.get_num_threads() == 1
        assert all(os.environ[name] == "1" for name in THREAD_VARIABLES)
    assert torch.get_num_threads() == before
    assert "OMP_NUM_THREADS" not in os.environ and os.environ["RAYON_NUM_THREADS"] == "7"


def test_thread_settings_restore_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), thread_settings(1):
        raise RuntimeError("a failed run")
    assert torch.get_num_threads() == before


def test_none_leaves_everything_as_it_is(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with thread_settings(None):
        assert os.environ["OMP_NUM_THREADS"] == "3"


def test_onnx_sessions_follow_the_thread_setting(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from transferlearn.deploy.variants import onnx_session

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with thread_settings(1):
        assert onnx_session(path).get_session_options().intra_op_num_threads == 1
    assert onnx_session(path, threads=2).get_session_options().intra_op_num_threads == 2


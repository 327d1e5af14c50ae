"""runtime.ort: ONNX Runtime sessions and the export cache, on small real ONNX models (no TensorFlow)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from vector_search.runtime.ort import ModelFileError, cache_name, cached_session, cpu_threads, file_key, open_session


def write_scale_model(path: Path, factor: float = 2.0) -> None:
    """A one-node ONNX model: y = x * factor, x float32 (batch, 3)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    factor_ = helper.make_tensor("factor", TensorProto.FLOAT, [], [factor])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "factor"], ["y"])], "scale", [x], [y], [factor_])
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())


def run(session, x: np.ndarray) -> np.ndarray:
    return session.run(None, {"x": x})[0]


def test_a_model_is_exported_once_then_opened_from_the_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path, calls = tmp_path / "cache" / "scale-0123.onnx", []

    def export(tmp: Path) -> None:
        assert tmp.parent == path.parent and tmp != path  # written beside the target, renamed when complete
        calls.append(tmp)
        write_scale_model(tmp)

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with caplog.at_level(logging.INFO, logger="vector_search"):
        assert np.array_equal(run(cached_session(path, export), x), 2 * x)
    assert len(calls) == 1 and path.is_file() and not calls[0].exists()
    [line] = [r.getMessage() for r in caplog.records if "exported" in r.getMessage()]
    assert line.startswith("exported scale to ONNX in ") and str(path) in line
    assert np.array_equal(run(cached_session(path, export, threads=1), x), 2 * x)
    assert len(calls) == 1, "the second session reads the cached file"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, f"{path.name}.crc32"]  # (its checksum)


def test_a_damaged_export_is_made_again(tmp_path: Path) -> None:
    path = tmp_path / "scale-0123.onnx"
    path.write_bytes(b"half a model")
    session = cached_session(path, lambda tmp: write_scale_model(tmp, 3.0))
    assert np.array_equal(run(session, np.ones((1, 3), np.float32)), np.full((1, 3), 3.0, np.float32))
    assert onnx.load(path).graph.node[0].op_type == "Mul"


def test_a_failed_export_leaves_nothing_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "scale-0123.onnx"

    def export(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise RuntimeError("no converter")

    with pytest.raises(RuntimeError, match="no converter"):
        cached_session(path, export)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ModelFileError, match="cannot open the exported model"):
        cached_session(path, lambda tmp: tmp.write_bytes(b"not a model"))


def test_sessions_use_the_cores_given(tmp_path: Path) -> None:
    write_scale_model(tmp_path / "m.onnx")
    assert 1 <= cpu_threads() <= (os.cpu_count() or 1)
    for threads in (1, None):
        session = open_session(tmp_path / "m.onnx", threads)
        assert session.get_providers() == ["CPUExecutionProvider"]
        assert run(session, np.ones((4, 3), np.float32)).shape == (4, 3)


def test_cache_names_follow_the_weights(tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"one")
    key = file_key(weights)
    assert file_key(weights) == key and str(weights.resolve()) in key
    time.sleep(0.05)  # past the file system clock tick
    weights.write_bytes(b"two")  # same size, rewritten: a new mtime
    assert file_key(weights) != key
    name = cache_name("lite", key)
    assert name.startswith("lite-") and name.endswith(".onnx") and name == cache_name("lite", key)
    assert cache_name("lite", file_key(weights)) != name and cache_name("other", key) != name

"""The mean and variance constants a run's ``transform_fn`` holds, and the
exact values they stand for.

TFT bakes each analyzer's result into the saved transform graph as a constant
that the transform function takes as an argument; inside the function, the
argument's consumers carry the analyzer's name. ``tft.scale_to_z_score``
computes ``(x - mean) / sqrt(var)``, so under an analyzer ``name`` the mean is
what ``name/sub`` consumes and the variance what ``name/Sqrt`` does (through a
cast, when the analysis ran in float64: ``pipelines.tft_precision``). The exact
values are numpy's ``float64`` mean and population variance of the same rows.
"""

import numpy as np
import pyarrow as pa
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import tensor_util

_CALLS = ("PartitionedCall", "StatefulPartitionedCall")


def consumed_constants(transform_fn_dir: str) -> dict[str, np.ndarray]:
    """Every constant the transform graph passes into its functions, by the name
    of the node that consumes it there (followed through nested calls)."""
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(f"{transform_fn_dir}/saved_model.pb", "rb") as f:
        saved_model.ParseFromString(f.read())
    graph = saved_model.meta_graphs[0].graph_def
    functions = {f.signature.name: f for f in graph.library.function}
    consumed = {}

    def visit(nodes, constants: dict[str, np.ndarray], calling: frozenset) -> None:
        for node in nodes:
            inputs = [i.split(":")[0] for i in node.input if not i.startswith("^")]
            if node.op in _CALLS:
                callee = functions[node.attr["f"].func.name]
                if callee.signature.name in calling:
                    continue
                arguments = {arg.name: constants[i]
                             for arg, i in zip(callee.signature.input_arg, inputs, strict=True)
                             if i in constants}
                visit(callee.node_def, arguments, calling | {callee.signature.name})
            elif node.op == "Cast" and inputs and inputs[0] in constants:
                # A constant cast (pipelines.tft_precision's float64 analysis,
                # rounded to float32) is the constant its consumers see.
                dtype = tf.dtypes.as_dtype(node.attr["DstT"].type).as_numpy_dtype
                constants[node.name] = constants[inputs[0]].astype(dtype)
            else:
                consumed.update((node.name, constants[i]) for i in inputs if i in constants)

    visit(graph.node, {n.name: tensor_util.MakeNdarray(n.attr["value"].tensor)
                       for n in graph.node if n.op == "Const"}, frozenset())
    return consumed


def z_score_moments(transform_fn_dir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each z-score analyzer's (mean, variance) constants, by analyzer name."""
    constants = consumed_constants(transform_fn_dir)
    return {node[:-len("/sub")]: (value, constants[node[:-len("/sub")] + "/Sqrt"])
            for node, value in constants.items()
            if node.endswith("/sub") and node[:-len("/sub")] + "/Sqrt" in constants}


def present_values(column: pa.Array) -> np.ndarray:
    """A raw ``list<x>`` column's present values (as TFT was fed them), as float64."""
    return np.array([v[0] for v in column.to_pylist() if v], dtype=np.float64)


def float32_ulps(got, exact: float) -> float:
    """How far ``got`` is from ``exact``, in float32 ulps at ``exact``."""
    return abs(float(got) - exact) / float(np.spacing(np.float32(abs(exact))))

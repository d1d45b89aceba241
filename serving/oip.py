"""Open Inference Protocol (v2) tensors in and out of an onnxruntime session.

A request names each input with its shape, datatype and data (flat or nested, row-major); every input
the graph declares must be there with the graph's datatype and rank, and the data must fill the shape.
What does not fit is an :class:`InferError` with the message the client gets, never a crash inside
onnxruntime.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, RuntimeException
from pydantic import BaseModel, Field

#: OIP datatype <-> NumPy dtype <-> onnxruntime's type string.
DATATYPES: dict[str, tuple[str, str]] = {
    "BOOL": ("bool", "tensor(bool)"),
    "UINT8": ("uint8", "tensor(uint8)"),
    "UINT16": ("uint16", "tensor(uint16)"),
    "UINT32": ("uint32", "tensor(uint32)"),
    "UINT64": ("uint64", "tensor(uint64)"),
    "INT8": ("int8", "tensor(int8)"),
    "INT16": ("int16", "tensor(int16)"),
    "INT32": ("int32", "tensor(int32)"),
    "INT64": ("int64", "tensor(int64)"),
    "FP16": ("float16", "tensor(float16)"),
    "FP32": ("float32", "tensor(float)"),
    "FP64": ("float64", "tensor(double)"),
}
OIP_OF_ORT = {ort: oip for oip, (_, ort) in DATATYPES.items()}
OIP_OF_NUMPY = {np_name: oip for oip, (np_name, _) in DATATYPES.items()}


class InferError(ValueError):
    """A request the graph cannot take, said in the request's own terms."""


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class RequestedOutput(BaseModel):
    name: str


class InferRequest(BaseModel):
    id: str | None = None
    #: Accepted as the protocol allows; none of callqa's graphs takes any.
    parameters: dict[str, Any] | None = None
    inputs: list[Tensor] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


def tensor_spec(args: Sequence[Any]) -> list[dict[str, Any]]:
    """A session's inputs or outputs as OIP metadata (dynamic axes as -1)."""
    return [
        {
            "name": a.name,
            "datatype": OIP_OF_ORT.get(a.type, a.type),
            "shape": [d if isinstance(d, int) else -1 for d in a.shape],
        }
        for a in args
    ]


def feed(request: InferRequest, session: Any, max_elements: int) -> dict[str, np.ndarray]:
    """The session's input arrays from the request's tensors, checked against the graph."""
    declared = {a.name: a for a in session.get_inputs()}
    given = {t.name: t for t in request.inputs}
    if len(given) != len(request.inputs):
        raise InferError("an input is given twice")
    if set(given) != set(declared):
        raise InferError(f"inputs {sorted(given)}: the model takes {sorted(declared)}")
    total = sum(math.prod(t.shape) for t in request.inputs if all(d >= 0 for d in t.shape))
    if total > max_elements:
        raise InferError(f"{total} elements in all: over the {max_elements} this server accepts")
    out = {}
    for name, arg in declared.items():
        t = given[name]
        want = OIP_OF_ORT.get(arg.type)
        if t.datatype != want:
            raise InferError(f"input {name}: datatype {t.datatype}, the model takes {want}")
        if len(t.shape) != len(arg.shape) or any(d < 0 for d in t.shape):
            raise InferError(f"input {name}: shape {t.shape}, the model takes rank {len(arg.shape)}")
        fixed = [(k, d) for k, d in enumerate(arg.shape) if isinstance(d, int) and d != t.shape[k]]
        if fixed:
            raise InferError(f"input {name}: shape {t.shape}, axis {fixed[0][0]} must be {fixed[0][1]}")
        try:
            values = np.asarray(t.data, dtype=DATATYPES[t.datatype][0])
        except (TypeError, ValueError) as err:
            raise InferError(f"input {name}: data are not {t.datatype}: {err}") from None
        if values.size != math.prod(t.shape):
            raise InferError(f"input {name}: {values.size} values cannot fill shape {t.shape}")
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise InferError(f"input {name}: NaN or infinite values")
        out[name] = values.reshape(t.shape)
    return out


def run(request: InferRequest, session: Any, model: str, max_elements: int) -> dict[str, Any]:
    """Run the session on the request; the response lists the outputs asked for (all by default)."""
    names = [o.name for o in session.get_outputs()]
    wanted = [o.name for o in request.outputs] if request.outputs else names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise InferError(f"outputs {unknown}: the model gives {names}")
    inputs = feed(request, session, max_elements)
    try:
        arrays = session.run(wanted, inputs)
    # a graph can refuse inputs that fit its signature: a wave shorter than the front-end's window
    except (Fail, InvalidArgument, RuntimeException) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InferError(f"the model could not run on these inputs: {first}") from None
    outputs = [
        {
            "name": name,
            "shape": list(a.shape),
            "datatype": OIP_OF_NUMPY.get(str(a.dtype), str(a.dtype)),
            "data": a.ravel().tolist(),
        }
        for name, a in zip(wanted, arrays, strict=True)
    ]
    return {"model_name": model, "id": request.id, "outputs": outputs}

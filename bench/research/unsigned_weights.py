"""Store a dynamically quantised ONNX model's int8 MatMul weights as uint8 (zero point 128), so every CPU
computes the same integers.

Why: onnxruntime's dynamic quantisation multiplies uint8 activations by int8 weights. On x86 CPUs without
AVX-512 VNNI (AVX2 only: many AMD EPYC and older Intel servers) that product goes through VPMADDUBSW, which
adds two products into a 16-bit lane and saturates; with VNNI, and for uint8 by uint8 on any CPU, the sums
are exact. The shipped pair model's logits moved by up to 1.6 log-odds between the two kinds of machine
(775 verdicts of 44,000 over bench/research/verdicts.py's pairs), and the verifier had been fitted on the
exact ones. A weight w stored as w + 128 with zero point 128 gives the same integers, (x - zx) * (w + 128 -
128), on every CPU: no retraining, the same file size, about 10% more time per pair on an AVX2 machine.

Usage: ``python bench/research/unsigned_weights.py IN.onnx OUT.onnx`` (IN and OUT may be one file);
``train_pair_model.py`` calls :func:`unsigned_weights` on what it exports. Needs the ``onnx`` package.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def unsigned_weights(source: Path, target: Path) -> int:
    """Rewrite every MatMulInteger's int8 weight initializer (with a zero point of 0) as uint8 with zero point
    128; returns how many were rewritten. Weights already unsigned are left as they are."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    initializers = {init.name: init for init in model.graph.initializer}
    rewritten = 0
    for node in model.graph.node:
        if node.op_type != "MatMulInteger" or len(node.input) < 4:
            continue
        weight_name, zero_name = node.input[1], node.input[3]
        if weight_name not in initializers or zero_name not in initializers:
            raise SystemExit(f"{source}: {node.name} takes its weight or zero point from another node")
        weight = numpy_helper.to_array(initializers[weight_name])
        zero = numpy_helper.to_array(initializers[zero_name])
        if weight.dtype == np.uint8:
            continue
        if weight.dtype != np.int8 or zero.dtype != np.int8 or zero.any():
            raise SystemExit(f"{source}: {node.name} is not symmetric int8 ({weight.dtype}, zero point {zero})")
        shifted = (weight.astype(np.int16) + 128).astype(np.uint8)
        initializers[weight_name].CopyFrom(numpy_helper.from_array(shifted, weight_name))
        initializers[zero_name].CopyFrom(numpy_helper.from_array(np.full(zero.shape, 128, np.uint8), zero_name))
        rewritten += 1
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return rewritten


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("target", type=Path)
    args = ap.parse_args()
    print(f"{unsigned_weights(args.source, args.target)} weights stored as uint8 in {args.target}")


if __name__ == "__main__":
    main()

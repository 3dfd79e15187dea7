"""A stable import path: ``tracemend.gating`` is :mod:`tracemend.analyze.gating` (the gate benchmark uses it)."""

from tracemend.analyze.gating import (  # noqa: F401
    ALPHA,
    bench_gate,
    bench_gate_canary,
    bench_gate_seq,
    gate_canary,
    gate_counts,
)

"""What ``tracemend.feedback`` costs the app's thread, beside a traced call and a direct store write.

Run: ``python bench/feedback.py`` (a few seconds). All in one interpreter, against a temporary store:

- ``track``: a call of a ``@tracemend.track``'ed function (the decorator's hot path, the reference);
- ``feedback``: ``tracemend.feedback(trace_id, False, reason=...)`` (queued, written by its own thread);
- ``direct``: writing the same score with ``Store.add_scores`` in the caller's thread (one transaction per
  feedback: the design not taken), with no other writer holding the lock.

Each is timed in small batches back to back; the median batch time over the batch size (small batches, so the
median is not a batch the scheduler pre-empted). Ratios compare numbers measured in this same run.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BATCH = 50
BATCHES = 200


def per_call_us(action, batches: int = BATCHES) -> float:
    times = []
    for _ in range(batches):
        start = time.perf_counter_ns()
        for _ in range(BATCH):
            action()
        times.append((time.perf_counter_ns() - start) / BATCH / 1000)
    return statistics.median(times)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="tracemend-bench-feedback-"))
    os.environ["TRACEMEND_DB"] = str(folder / "traces.db")
    import tracemend
    from tracemend.capture.feedback import feedback_score, feedback_stats
    from tracemend.store import Store

    @tracemend.track
    def answer(x: int) -> int:
        return x + 1

    trace_id = "0" * 31 + "1"
    track_us = per_call_us(lambda: answer(1))
    feedback_us = per_call_us(lambda: tracemend.feedback(trace_id, False, reason="promised a refund"))
    tracemend.flush()
    store = Store(folder / "direct.db")
    direct_us = per_call_us(
        lambda: store.add_scores([feedback_score(trace_id, 0.0, reason="promised a refund")]), batches=20
    )
    stats = feedback_stats()
    print(f"python {sys.version.split()[0]}, batches of {BATCH}, median per call")
    print(f"  @track call           {track_us:8.2f} µs  (reference)")
    print(f"  tracemend.feedback    {feedback_us:8.2f} µs  ({feedback_us / track_us:.2f}× a traced call)")
    print(f"  direct store write    {direct_us:8.2f} µs  ({direct_us / feedback_us:.0f}× feedback)")
    print(f"  feedback written {stats['written']} of {stats['queued']} queued, {stats['failed']} failed")


if __name__ == "__main__":
    main()

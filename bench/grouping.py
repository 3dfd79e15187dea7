"""Grouping accuracy of ``tracemend.analyze.signatures.template`` on Loghub-2k, beside the usual recipe.

For each system: GA (share of lines whose predicted group equals their true group, as sets of lines)
and FGA (F1 over groups: a predicted group is correct when it equals a true group exactly), as in the
Loghub-2.0 evaluator; then the average, and throughput on one core. One configuration for all systems.

    python bench/grouping.py [--data ../shared/data/loghub2k] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from tracemend.analyze import signatures
from tracemend.analyze.signatures import merge_templates, template, template_uncached

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub2k"

_NAIVE_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NAIVE_TS = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_NAIVE_NUM = re.compile(r"\d{4,}")


def naive_template(message: str) -> str:
    """The usual recipe: mask UUIDs, timestamps and numbers of 4+ digits, truncate to 200 chars."""
    text = _NAIVE_UUID.sub("<UUID>", message)
    text = _NAIVE_TS.sub("<TS>", text)
    text = _NAIVE_NUM.sub("<N>", text)
    return text[:200]


def load(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r["Content"] for r in rows], [r["EventId"] for r in rows]


def scores(truth: list[str], predicted: list[str]) -> tuple[float, float]:
    """(GA, FGA) of a predicted grouping against the true one."""
    true_groups: dict[str, set[int]] = defaultdict(set)
    pred_groups: dict[str, set[int]] = defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, predicted, strict=True)):
        true_groups[t].add(i)
        pred_groups[p].add(i)
    true_sets = {frozenset(s) for s in true_groups.values()}
    correct_lines = 0
    correct_groups = 0
    for members in pred_groups.values():
        if frozenset(members) in true_sets:
            correct_lines += len(members)
            correct_groups += 1
    ga = correct_lines / len(truth)
    precision = correct_groups / len(pred_groups)
    recall = correct_groups / len(true_groups)
    fga = 0.0 if correct_groups == 0 else 2 * precision * recall / (precision + recall)
    return ga, fga


def throughput(
    fn: Callable[[str], str], messages: list[str], repeat: int, reset: Callable[[], None] | None = None
) -> float:
    best = float("inf")
    for _ in range(repeat):
        if reset is not None:
            reset()
        start = time.perf_counter()
        for m in messages:
            fn(m)
        best = min(best, time.perf_counter() - start)
    return len(messages) / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder with <System>/<System>_2k*.csv"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats (best is kept)")
    parser.add_argument("--show-errors", metavar="SYSTEM", help="print mis-grouped templates of one system")
    args = parser.parse_args(argv)
    files = sorted(args.data.glob("*/*_2k.log_structured_corrected.csv"))
    if not files:
        print(f"error: no Loghub-2k files under {args.data}", file=sys.stderr)
        return 2
    methods: dict[str, Callable[[str], str]] = {
        "tracemend": template,
        "single": template,
        "recipe": naive_template,
    }
    print(
        "| system | tracemend GA | tracemend FGA | template() alone GA | template() alone FGA "
        "| recipe GA | recipe FGA | groups (true / tracemend) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    totals: dict[str, list[float]] = defaultdict(list)
    all_messages: list[str] = []
    for path in files:
        system = path.parent.name
        messages, truth = load(path)
        all_messages.extend(messages)
        row = []
        single = [template(m) for m in messages]
        # The corpus pass sees the system's templates (not its labels), as the analyzer sees a store's.
        merged = merge_templates(single)
        ours = [merged[t] for t in single]
        for name, fn in methods.items():
            predicted = {"tracemend": ours, "single": single}.get(name) or [fn(m) for m in messages]
            ga, fga = scores(truth, predicted)
            totals[f"{name}_ga"].append(ga)
            totals[f"{name}_fga"].append(fga)
            row += [f"{ga:.3f}", f"{fga:.3f}"]
        print(f"| {system} | {' | '.join(row)} | {len(set(truth))} / {len(set(ours))} |")
        if args.show_errors == system:
            _show_errors(messages, truth, ours)
    start = time.perf_counter()
    n_templates = 0
    for path in files:
        single = [template(m) for m in load(path)[0]]
        n_templates += len(merge_templates(single))
    merge_s = time.perf_counter() - start
    avg = {k: sum(v) / len(v) for k, v in totals.items()}
    print(
        f"| **average** | **{avg['tracemend_ga']:.3f}** | **{avg['tracemend_fga']:.3f}** | "
        f"{avg['single_ga']:.3f} | {avg['single_fga']:.3f} | "
        f"{avg['recipe_ga']:.3f} | {avg['recipe_fga']:.3f} | |"
    )
    print()
    print("| method | messages/s (one core) |")
    print("|---|---|")
    cold = throughput(template_uncached, all_messages, args.repeat, signatures.clear_caches)
    print(f"| tracemend, no message cache, token cache starting empty | {cold:,.0f} |")
    warm = throughput(template, all_messages, args.repeat, signatures.clear_caches)
    print(f"| tracemend (caches starting empty, one pass over all 20k lines) | {warm:,.0f} |")
    print(
        f"| corpus pass (merge_templates) over {n_templates:,} distinct templates | {merge_s * 1000:.1f} ms total |"
    )
    print(f"| recipe | {throughput(naive_template, all_messages, args.repeat):,.0f} |")
    return 0


def _show_errors(messages: list[str], truth: list[str], predicted: list[str]) -> None:
    by_true: dict[str, set[str]] = defaultdict(set)
    by_pred: dict[str, set[str]] = defaultdict(set)
    example: dict[str, str] = {}
    for m, t, p in zip(messages, truth, predicted, strict=True):
        by_true[t].add(p)
        by_pred[p].add(t)
        example.setdefault(p, m)
    for t, preds in sorted(by_true.items()):
        if len(preds) > 1 or any(len(by_pred[p]) > 1 for p in preds):
            print(f"  {t}:")
            for p in sorted(preds):
                print(f"      {p[:140]!r}  <- {example[p][:100]!r}  (true groups: {len(by_pred[p])})")


if __name__ == "__main__":
    sys.exit(main())

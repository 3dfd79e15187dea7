"""Grouping accuracy that generalizes: leave-systems-out on Loghub-2k, an agent-error corpus, throughput.

1. Leave-systems-out on the ten Loghub-2k systems. Every choice tracemend leaves open (the per-message
   rules in ``MaskRules``, the corpus pass's thresholds in ``GroupingRules``) is chosen on the training
   systems of a fold (best mean GA) and scored on its held-out systems; the folds rotate so that each
   system is held out once. Beside it, in the same run: the "mask every token with a digit" baseline,
   Drain3 0.9.x with its defaults and Drain3 with its similarity threshold chosen on the same training
   systems, and tracemend's signature version 1 (before this work). GA: share of lines whose predicted
   group equals their true group exactly (as sets of lines); FGA: F1 over groups (a predicted group is
   correct when it equals a true group). As in the Loghub-2.0 evaluator.
2. The agent-error corpus (``tests/helpers/agent_groups.py``): per-tag GA of the same methods on the
   groups rules may be tuned on (TUNE) and on groups only scored (SCORE). A family is (exception type,
   frame): every method groups within a family, as the analyzer does.
3. Throughput of the per-message part on one core, as a ratio to the digit baseline in the same run.

    python bench/grouping.py [--data ../shared/data/loghub2k] [--folds 5] [--quick] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from tracemend.analyze.grouping import DEFAULT_GROUPING, GroupingRules, generalize  # noqa: E402
from tracemend.analyze.legacy import merge_templates_v1, template_v1  # noqa: E402
from tracemend.analyze.masks import DEFAULT_RULES, Masker, MaskRules  # noqa: E402

from helpers.agent_corpus import Failure, generate  # noqa: E402
from helpers.agent_groups import SCORE, TUNE  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "loghub2k"
AGENT_MESSAGES = 3000
AGENT_SEEDS = (1, 2)

Config = tuple[MaskRules, GroupingRules]


def mask_grid(quick: bool) -> list[MaskRules]:
    if quick:
        return [DEFAULT_RULES]
    return [MaskRules(quotes=q, dotted=d) for q in ("whole", "words", "mixed") for d in (0, 2, 3)]


def grouping_grid(quick: bool) -> list[GroupingRules]:
    if quick:
        return [GroupingRules(min_variants=v, max_span=s) for v in (3, 4, 5, 6) for s in (1, 2)]
    return [
        GroupingRules(min_variants=v, min_variants_masked=m, min_constants=c, name_guard=g, max_span=s)
        for v in (2, 3, 4, 5, 6)
        for m in (1, 2, 3)
        for c in (1, 2, 3)
        for g in (True, False)
        for s in (1, 2)
        if m <= v
    ]


def describe(config: Config) -> str:
    m, g = config
    return (
        f"quotes={m.quotes} dotted={m.dotted} variants={g.min_variants}/{g.min_variants_masked} "
        f"constants={g.min_constants} guard={'y' if g.name_guard else 'n'} span={g.max_span}"
    )


# --- data ----------------------------------------------------------------------------------------


def load_loghub(data: Path) -> dict[str, tuple[list[str], list[str]]]:
    systems = {}
    for path in sorted(data.glob("*/*_2k.log_structured_corrected.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        systems[path.parent.name] = ([r["Content"] for r in rows], [r["EventId"] for r in rows])
    return systems


def scores(truth: Sequence[object], predicted: Sequence[object]) -> tuple[float, float]:
    """(GA, FGA) of a predicted grouping against the true one."""
    ok = correct_lines(truth, predicted)
    true_groups = len(set(truth))
    pred = defaultdict(list)
    for i, p in enumerate(predicted):
        pred[p].append(i)
    correct_groups = sum(1 for members in pred.values() if ok[members[0]])
    ga = sum(ok) / len(truth)
    precision, recall = correct_groups / len(pred), correct_groups / true_groups
    fga = 0.0 if correct_groups == 0 else 2 * precision * recall / (precision + recall)
    return ga, fga


def correct_lines(truth: Sequence[object], predicted: Sequence[object]) -> list[bool]:
    """Per line: is its predicted group exactly its true group?"""
    t_groups: dict[object, list[int]] = defaultdict(list)
    p_groups: dict[object, list[int]] = defaultdict(list)
    for i, (t, p) in enumerate(zip(truth, predicted, strict=True)):
        t_groups[t].append(i)
        p_groups[p].append(i)
    true_sets = {frozenset(s) for s in t_groups.values()}
    ok = [False] * len(truth)
    for members in p_groups.values():
        if frozenset(members) in true_sets:
            for i in members:
                ok[i] = True
    return ok


# --- methods: each maps the messages of one family to group labels --------------------------------


def digits(message: str) -> str:
    """The one-line baseline: every whitespace token that holds a digit is a parameter."""
    return " ".join("<*>" if any(c.isdigit() for c in tok) else tok for tok in message.split())


def group_digits(messages: Sequence[str]) -> list[str]:
    return [digits(m) for m in messages]


def group_drain3(messages: Sequence[str], sim_th: float = 0.4) -> list[int]:
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()  # defaults, no drain3.ini from the working directory
    config.drain_sim_th = sim_th
    miner = TemplateMiner(config=config)
    return [miner.add_log_message(m)["cluster_id"] for m in messages]


def group_v1(messages: Sequence[str]) -> list[str]:
    single = [template_v1(m) for m in messages]
    merged = merge_templates_v1(single)
    return [merged[t] for t in single]


def group_ours(messages: Sequence[str], config: Config, maskers: dict[MaskRules, Masker]) -> list[str]:
    masker = maskers.setdefault(config[0], Masker(config[0]))
    single = [masker.template(m) for m in messages]
    mapping = generalize(set(single), config[1])
    return [mapping[t] for t in single]


def by_family(
    rows: Sequence[Failure], fn: Callable[[Sequence[str]], Sequence[object]]
) -> list[tuple[object, ...]]:
    """Group within each family: the label is (family, the method's label in it)."""
    index: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        index[r.family].append(i)
    labels: list[tuple[object, ...]] = [()] * len(rows)
    for family, members in index.items():
        for i, label in zip(members, fn([rows[i].message for i in members]), strict=True):
            labels[i] = (family, label)
    return labels


# --- 1. leave-systems-out -------------------------------------------------------------------------


def folds_of(systems: Sequence[str], k: int) -> list[list[str]]:
    return [list(systems[i::k]) for i in range(k)]


def leave_systems_out(systems: dict[str, tuple[list[str], list[str]]], quick: bool, k: int) -> None:
    """Choose on the training systems (the per-message rules first, then the corpus pass's thresholds
    given them; each by best mean GA, the shipped default winning ties), score on the held-out ones."""
    names = sorted(systems)
    maskers: dict[MaskRules, Masker] = {}
    memo: dict[tuple[Config, str], tuple[float, float]] = {}

    def score(config: Config, system: str) -> tuple[float, float]:
        got = memo.get((config, system))
        if got is None:
            messages, truth = systems[system]
            got = memo[(config, system)] = scores(truth, group_ours(messages, config, maskers))
        return got

    def best(options: list[Config], train: list[str]) -> Config:
        return max(options, key=lambda c: _mean(score(c, s)[0] for s in train))  # the first best: defaults

    masks = [DEFAULT_RULES, *(m for m in mask_grid(quick) if m != DEFAULT_RULES)]
    groupings = [DEFAULT_GROUPING, *(g for g in grouping_grid(quick) if g != DEFAULT_GROUPING)]
    started = time.perf_counter()
    sims = (0.3, 0.4, 0.5, 0.6, 0.7)
    drain = {th: {s: scores(systems[s][1], group_drain3(systems[s][0], th)) for s in names} for th in sims}
    fixed = {
        "digits": {s: scores(systems[s][1], group_digits(systems[s][0])) for s in names},
        "v1": {s: scores(systems[s][1], group_v1(systems[s][0])) for s in names},
    }
    print()
    print(
        "| held out | chosen on the other systems | tracemend GA | FGA | digits GA | FGA | Drain3 GA | FGA "
        "| Drain3 tuned GA | FGA | v1 GA | FGA |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    held: dict[str, list[tuple[float, float]]] = defaultdict(list)
    per_system: dict[str, tuple[float, float]] = {}
    for test in folds_of(names, k):
        train = [s for s in names if s not in test]
        mask = best([(m, DEFAULT_GROUPING) for m in masks], train)[0]
        chosen = best([(mask, g) for g in groupings], train)
        th = max(sims, key=lambda t: _mean(drain[t][s][0] for s in train))
        rows = {
            "tracemend": _fold({s: score(chosen, s) for s in test}, test),
            "digits": _fold(fixed["digits"], test),
            "drain3": _fold(drain[0.4], test),
            "drain3 tuned": _fold(drain[th], test),
            "v1": _fold(fixed["v1"], test),
        }
        for name, value in rows.items():
            held[name].append(value)
        for s in test:
            per_system[s] = score(chosen, s)
        cells = " | ".join(f"{ga:.3f} | {fga:.3f}" for ga, fga in rows.values())
        print(f"| {', '.join(test)} | {describe(chosen)}; Drain3 sim_th {th} | {cells} |")
    means = {name: (_mean(v[0] for v in vals), _mean(v[1] for v in vals)) for name, vals in held.items()}
    cells = " | ".join(f"**{ga:.3f}** | {fga:.3f}" for ga, fga in means.values())
    print(f"| **mean over held-out folds** | | {cells} |")
    print()
    print("Per system, held out (tracemend with the configuration chosen without it):")
    print()
    print("| system | tracemend GA | FGA | digits GA | FGA | Drain3 GA | FGA | v1 GA | FGA |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in names:
        cells = " | ".join(
            f"{ga:.3f} | {fga:.3f}"
            for ga, fga in (per_system[s], fixed["digits"][s], drain[0.4][s], fixed["v1"][s])
        )
        print(f"| {s} | {cells} |")
    default = (DEFAULT_RULES, DEFAULT_GROUPING)
    alone = {
        s: scores(
            systems[s][1], [maskers.setdefault(DEFAULT_RULES, Masker()).template(m) for m in systems[s][0]]
        )
        for s in names
    }
    print()
    print(
        f"template() alone (the per-message part, shipped rules) on all ten: GA {_mean(v[0] for v in alone.values()):.3f}, "
        f"FGA {_mean(v[1] for v in alone.values()):.3f}."
    )
    print(
        f"Shipped defaults ({describe(default)}), in-sample on all ten: "
        f"GA {_mean(score(default, s)[0] for s in names):.3f}, FGA {_mean(score(default, s)[1] for s in names):.3f}. "
        f"{len(memo)} (configuration, system) pairs scored in {time.perf_counter() - started:.0f} s."
    )


def _fold(results: dict[str, tuple[float, float]], test: list[str]) -> tuple[float, float]:
    return _mean(results[s][0] for s in test), _mean(results[s][1] for s in test)


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals)


# --- 2. agent corpus ------------------------------------------------------------------------------


def agent_scores(config: Config) -> None:
    maskers: dict[MaskRules, Masker] = {}
    methods: dict[str, Callable[[Sequence[str]], Sequence[object]]] = {
        "tracemend": lambda ms: group_ours(ms, config, maskers),
        "template() alone": lambda ms: [
            maskers.setdefault(config[0], Masker(config[0])).template(m) for m in ms
        ],
        "digits": group_digits,
        "Drain3": group_drain3,
        "v1": group_v1,
    }
    for label, groups in (("TUNE", TUNE), ("SCORE", SCORE)):
        per_tag: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        overall: dict[str, list[tuple[float, float]]] = defaultdict(list)
        n_rows = 0
        for seed in AGENT_SEEDS:
            rows = generate(groups, AGENT_MESSAGES, seed)
            n_rows += len(rows)
            truth = [r.group for r in rows]
            for name, fn in methods.items():
                predicted = by_family(rows, fn)
                ok = correct_lines(truth, predicted)
                overall[name].append(scores(truth, predicted))
                tags: dict[str, list[bool]] = defaultdict(list)
                for r, good in zip(rows, ok, strict=True):
                    tags[r.tag].append(good)
                for tag, goods in tags.items():
                    per_tag[tag][name].append(sum(goods) / len(goods))
        print()
        print(
            f"Agent corpus, {label} groups ({len(groups)} groups, {n_rows // len(AGENT_SEEDS):,} messages, "
            f"mean of seeds {', '.join(map(str, AGENT_SEEDS))}): GA per tag"
        )
        print()
        print("| tag | " + " | ".join(methods) + " |")
        print("|---|" + "---|" * len(methods))
        for tag in sorted(per_tag):
            print(f"| {tag} | " + " | ".join(f"{_mean(per_tag[tag][m]):.3f}" for m in methods) + " |")
        print(
            "| **all (GA)** | "
            + " | ".join(f"**{_mean(v[0] for v in overall[m]):.3f}**" for m in methods)
            + " |"
        )
        print("| all (FGA) | " + " | ".join(f"{_mean(v[1] for v in overall[m]):.3f}" for m in methods) + " |")


# --- 3. throughput --------------------------------------------------------------------------------


def throughput(
    fn: Callable[[str], object], messages: list[str], repeat: int, reset: Callable[[], None]
) -> float:
    """Messages per second of CPU time (the process's, so other jobs on a shared machine count less)."""
    best = float("inf")
    for _ in range(repeat):
        reset()
        start = time.process_time()
        for m in messages:
            fn(m)
        best = min(best, time.process_time() - start)
    return len(messages) / best


def speed(loghub: list[str], agent: list[str], repeat: int) -> None:
    masker = Masker(DEFAULT_RULES)

    def nothing() -> None:
        return None

    print()
    print(
        "Per-message part on one core, messages per CPU second (best of repeats; caches emptied before each):"
    )
    print()
    print(
        "| messages | digits baseline msg/s | tracemend, message cache msg/s | ratio | no message cache "
        "msg/s | ratio |"
    )
    print("|---|---|---|---|---|---|")
    for label, msgs in (("Loghub-2k, all 20,000 lines", loghub), (f"agent corpus, {len(agent):,}", agent)):
        base = throughput(digits, msgs, repeat, nothing)
        warm = throughput(masker.template, msgs, repeat, masker.clear)
        cold = throughput(masker.template_uncached, msgs, repeat, masker.clear)
        print(
            f"| {label} | {base:,.0f} | {warm:,.0f} | {warm / base:.2f} | {cold:,.0f} | {cold / base:.2f} |"
        )
    start = time.perf_counter()
    single = [masker.template(m) for m in loghub]
    n = 0
    for i in range(0, len(single), 2000):
        n += len(generalize(set(single[i : i + 2000]), DEFAULT_GROUPING))
    print()
    print(
        f"Corpus pass: {n:,} distinct templates of the ten systems in "
        f"{(time.perf_counter() - start) * 1000:.0f} ms (templates included)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder with <System>/<System>_2k*.csv"
    )
    parser.add_argument(
        "--folds", type=int, default=5, help="leave-systems-out folds (default 5: two held out)"
    )
    parser.add_argument("--quick", action="store_true", help="a small grid (minutes → seconds)")
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats (best is kept)")
    parser.add_argument("--skip", choices=["loghub", "agents", "speed"], action="append", default=[])
    args = parser.parse_args(argv)
    logging.getLogger("drain3").setLevel(logging.WARNING)
    systems = load_loghub(args.data)
    if len(systems) < 2:
        print(f"error: no Loghub-2k files under {args.data}", file=sys.stderr)
        return 2
    default = (DEFAULT_RULES, DEFAULT_GROUPING)
    if "loghub" not in args.skip:
        print(
            f"Leave-systems-out on Loghub-2k: {len(systems)} systems, {args.folds} folds; "
            f"{len(mask_grid(args.quick))} per-message rule sets x {len(grouping_grid(args.quick))} corpus-pass settings"
        )
        leave_systems_out(systems, args.quick, args.folds)
    if "agents" not in args.skip:
        print()
        print(f"Configuration used on the agent corpus (the shipped defaults): {describe(default)}")
        agent_scores(default)
    if "speed" not in args.skip:
        loghub = list(itertools.chain.from_iterable(m for m, _t in systems.values()))
        agent = [r.message for r in generate(TUNE, AGENT_MESSAGES, 1) + generate(SCORE, AGENT_MESSAGES, 1)]
        speed(loghub, agent, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())

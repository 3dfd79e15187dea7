"""The statistical gate: traffic, overdispersion, rate uncertainty, FDR, new signatures, looks, canary."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from tracemend.analyze import gating

H = 168


def _traffic(rng: np.random.Generator, level: float = 1000.0) -> np.ndarray:
    hours = np.arange(H)
    return level * (1 + 0.5 * np.cos(2 * np.pi * (hours % 24 - 15) / 24)) * rng.uniform(0.95, 1.05, H)


def _baseline(
    rng: np.random.Generator, rates: np.ndarray, traffic: np.ndarray, shape: float | np.ndarray = 5.0
):
    """Hourly counts: Poisson with gamma rate noise of the given shape (smaller = burstier)."""
    shape = np.broadcast_to(np.asarray(shape, dtype=float), rates.shape)
    noise = rng.gamma(shape[:, None], 1.0 / shape[:, None], size=(len(rates), H))
    return rng.poisson(rates[:, None] * traffic[None, :] / traffic.mean() * noise)


def test_null_deploys_rarely_alarm() -> None:
    rng = np.random.default_rng(1)
    alarms = 0
    for _ in range(100):
        traffic = _traffic(rng)
        rates = np.exp(rng.uniform(np.log(0.01), np.log(30), 150))
        shape = np.exp(rng.uniform(np.log(0.7), np.log(30), 150))
        base = _baseline(rng, rates, traffic, shape)
        wt = traffic[-1]
        window = rng.poisson(rates * wt / traffic.mean() * rng.gamma(shape, 1 / shape))
        alarms += bool(gating.bench_gate(base, traffic, window, wt, 1.0).any())
    assert alarms <= 10


def test_traffic_spike_is_not_a_regression_but_a_rate_jump_is() -> None:
    rng = np.random.default_rng(2)
    traffic = _traffic(rng)
    rates = np.full(20, 5.0)
    base = _baseline(rng, rates, traffic, 50.0)
    spike = 4.0 * traffic.mean()
    window = np.round(rates * 4.0).astype(np.int64)  # errors follow traffic: 4x traffic, 4x errors
    assert not gating.bench_gate(base, traffic, window, spike, 1.0).any()
    jumped = window.copy()
    jumped[3] = 200  # 10x what the spike explains
    flags = gating.bench_gate(base, traffic, jumped, spike, 1.0)
    assert flags[3] and flags.sum() == 1


def test_bursty_signature_needs_more_evidence_than_a_steady_one() -> None:
    rng = np.random.default_rng(3)
    traffic = np.full(H, 1000.0)
    steady = rng.poisson(10.0, H)
    bursty = rng.poisson(10.0 * rng.gamma(0.5, 2.0, H))
    base = np.vstack([steady, bursty]).astype(np.int64)
    model = gating.fit_baseline(base, traffic)
    assert model.dispersion[1] > 5 * model.dispersion[0]
    window = np.array([40, 40])
    result = gating.gate_counts(base, traffic, window, 1000.0, 1.0, alpha=0.001)
    assert result.p_value[0] < 1e-6 < 1e-3 < result.p_value[1]
    assert result.flags[0] and not result.flags[1]


def test_rate_uncertainty_widens_rare_signatures() -> None:
    traffic = np.full(H, 1000.0)
    rare = np.zeros((1, H), dtype=np.int64)
    rare[0, [5, 90]] = 1  # seen twice in a week
    common = np.full((1, H), 10, dtype=np.int64)
    m_rare = gating.fit_baseline(rare, traffic)
    m_common = gating.fit_baseline(common, traffic)
    assert m_rare.shape[0] < 5 < m_common.shape[0]
    # Same relative jump (x6 the hourly rate): far more surprising for the well-known rate.
    p_rare = gating.gate_counts(rare, traffic, np.array([1]), 1000.0, 1.0).p_value[0]
    p_common = gating.gate_counts(common, traffic, np.array([60]), 1000.0, 1.0).p_value[0]
    assert p_common < 1e-10 < p_rare


def test_new_signatures_one_is_noise_a_handful_is_new() -> None:
    rng = np.random.default_rng(4)
    traffic = _traffic(rng)
    base = _baseline(rng, np.full(50, 2.0), traffic)
    window = np.concatenate([rng.poisson(2.0, 50), [1, 1, 1, 4]])
    result = gating.gate_counts(base, traffic, window, traffic[-1], 1.0)
    assert result.new[50:].all() and not result.new[:50].any()
    assert not result.flags[50:53].any()
    assert result.flags[53]
    assert result.verdicts()[53] == "new"


def test_traffic_independent_signature_uses_the_clock() -> None:
    rng = np.random.default_rng(5)
    hours = np.arange(H)
    traffic = 1000 * (1 + 0.8 * np.cos(2 * np.pi * (hours % 24) / 24))
    cron = rng.poisson(20.0, H)[None, :]
    model = gating.fit_baseline(cron, traffic)
    assert model.per_hour[0]
    # At a quiet hour the traffic model would expect few errors; the clock model expects ~20.
    result = gating.gate_counts(cron, traffic, np.array([24]), float(traffic.min()), 1.0)
    assert 15 < result.expected[0] < 25 and not result.flags[0]


def test_bh_qvalues() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.5])
    q = gating.bh_qvalues(p)
    np.testing.assert_allclose(q, [0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert np.all(q >= p)
    assert gating.bh_qvalues(np.array([])).shape == (0,)


def test_nb_upper_tail_matches_scipy() -> None:
    from scipy.stats import nbinom

    x = np.array([0, 1, 3, 10, 40])
    mean, shape = 4.0, 1.5
    expected = nbinom.sf(x - 1, shape, shape / (shape + mean))
    expected[x <= 0] = 1.0
    np.testing.assert_allclose(
        gating.nb_upper_tail(x, np.full(5, mean), np.full(5, shape)), expected, rtol=1e-9
    )


def test_sequential_flags_early_and_never_looks_ahead() -> None:
    rng = np.random.default_rng(6)
    traffic = _traffic(rng)
    base = _baseline(rng, np.full(30, 6.0), traffic)
    slices = rng.poisson(0.5, size=(30, 12)).astype(np.int64)
    slices[7] = rng.poisson(5.0, 12)  # x10 from the first minute
    st = np.full(12, traffic[-1] / 12)
    first = gating.bench_gate_seq(base, traffic, slices, st, 5 / 60)
    assert 0 <= first[7] <= 3
    for j in range(12):
        changed = slices.copy()
        changed[:, j + 1 :] = rng.poisson(50.0, size=changed[:, j + 1 :].shape)
        again = gating.bench_gate_seq(base, traffic, changed, st, 5 / 60)
        early = first <= j
        assert np.array_equal(np.where(early, first, -1), np.where(again <= j, again, -1))


def test_cli_default_alpha_is_the_gates() -> None:
    from tracemend.analyze import DEFAULT_ALPHA

    assert DEFAULT_ALPHA == gating.ALPHA


def test_sequential_spending_sums_to_alpha() -> None:
    assert abs(gating.spending(12).sum() - gating.ALPHA) < 1e-12


def test_canary_cancels_shared_bursts() -> None:
    base = np.full((3, H), 5, dtype=np.int64)
    # An outage hits both versions alike: 10% of 400 on the canary is expected.
    canary = np.array([40, 1, 12])
    control = np.array([360, 9, 8])
    flags = gating.bench_gate_canary(base, np.full(H, 1000.0), canary, control, 0.1, 1000.0, 1.0)
    assert flags.tolist() == [False, False, True]


def test_shapes_and_dtypes() -> None:
    base = np.zeros((0, H), dtype=np.int64)
    flags = gating.bench_gate(base, np.full(H, 10.0), np.array([1, 3], dtype=np.int64), 10.0, 1.0)
    assert flags.dtype == bool and flags.shape == (2,)
    first = gating.bench_gate_seq(
        base, np.full(H, 10.0), np.zeros((2, 12), dtype=np.int64), np.ones(12), 5 / 60
    )
    assert first.dtype.kind == "i" and (first == -1).all()


def test_scipy_is_imported_lazily() -> None:
    code = "import sys, tracemend.analyze.gating; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

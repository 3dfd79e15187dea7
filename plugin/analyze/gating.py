"""The statistical gate: did this deploy make a signature fail more often than its history explains?

For every signature the baseline (hourly counts of distinct failing traces over the 7 days before the
deploy, with the hourly number of traces as exposure) gives a predictive distribution for the window
count; the p-value is its upper tail at the observed count; Benjamini–Hochberg turns the p-values of
all signatures of a deploy into q-values and flags those under ``alpha``. The model, with its math and
its assumptions, is written down in docs/gating.md. In short:

* expected count = estimated rate × window exposure (traffic), or the hourly mean for signatures whose
  counts follow the clock rather than traffic (cron-like), whichever model fits the baseline better;
* hour-to-hour overdispersion φ (variance = μ + φμ²) estimated per signature by moments and shrunk
  toward the deploy's pooled value, because bursty errors make a Poisson test alarm constantly;
* the rate's own uncertainty (a gamma posterior on the rate whose shape is the effective number of
  baseline counts) widens the predictive distribution, so a rate seen 3 times in a week is not
  treated as if it were known;
* the window count is negative binomial with mean ``E`` and shape ``1 / (φ + 1/a + φ/a)``;
* a signature never seen in the baseline gets the same predictive distribution with zero baseline
  counts and the Jeffreys prior (rate ~ Gamma(½, baseline exposure)), tested conditionally on its
  appearing at all (only those that appear are tested): one occurrence is never evidence, a handful
  within an hour after a quiet week is — no ad-hoc "seen twice" rule;
* sequential looks spend ``alpha`` over the looks (Bonferroni split of the budget, conservative since
  looks are positively correlated), so stopping early does not inflate false alarms;
* canary mode conditions on the total count of each signature: under the null the canary's share is
  Binomial(total, f), which cancels every shared burst, incident and traffic swing.

numpy is imported at module level only here (the gate is numeric); scipy is imported inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
# Pseudo-count weight of the pooled dispersion when shrinking a signature's own estimate.
DISPERSION_PRIOR_WEIGHT = 20.0
DEFAULT_DISPERSION = 0.5
MAX_DISPERSION = 10.0
JEFFREYS_SHAPE = 0.5
PHI_SE_MULTIPLIER = 0.5


@dataclass
class GateResult:
    """Per-signature results of one gate decision (arrays of length M)."""

    expected: np.ndarray
    p_value: np.ndarray
    q_value: np.ndarray
    flags: np.ndarray
    new: np.ndarray  # never seen in the baseline

    def verdicts(self) -> list[str]:
        return [
            ("new" if n else "regression") if f else "noise"
            for f, n in zip(self.flags, self.new, strict=True)
        ]


@dataclass
class BaselineModel:
    """What the baseline says about each of its S signatures."""

    rate: np.ndarray  # expected count per unit of exposure (traffic model) or per hour (clock model)
    per_hour: np.ndarray  # True where the clock model fits better (cron-like)
    dispersion: np.ndarray  # φ per signature, after shrinkage
    shape: np.ndarray  # a: effective counts behind the rate (gamma posterior shape)
    total_exposure: float
    hours: int
    pooled_dispersion: float


def fit_baseline(baseline_hourly: np.ndarray, baseline_traffic: np.ndarray) -> BaselineModel:
    """Fit rates, the traffic-or-clock choice, overdispersion and rate uncertainty per signature."""
    c = np.asarray(baseline_hourly, dtype=np.float64)
    traffic = np.asarray(baseline_traffic, dtype=np.float64)
    S, H = c.shape if c.ndim == 2 else (0, len(traffic))
    traffic = np.where(traffic > 0, traffic, 0.0)
    total_t = float(traffic.sum()) or 1.0
    if S == 0:
        empty = np.zeros(0)
        return BaselineModel(empty, empty.astype(bool), empty, empty, total_t, H, DEFAULT_DISPERSION)
    total = c.sum(axis=1)
    # Two mean models for each hour: proportional to traffic (e = C·w[h], w = traffic share) or flat in
    # time (e = C/H). Their moment sums reduce to Σc², Σc·w and Σw², so no [S, H] temporaries.
    share = traffic / total_t
    sum_c2 = np.einsum("ij,ij->i", c, c)
    sum_cw = c @ share
    sum_w2 = float(share @ share)
    phi_t = _moment_dispersion(sum_c2 - 2 * total * sum_cw + total**2 * sum_w2 - total, total**2 * sum_w2)
    phi_c = _moment_dispersion(sum_c2 - total**2 / H - total, total**2 / H)
    # A signature follows the clock only when that fits clearly better (the traffic model is the default).
    per_hour = phi_c < 0.5 * phi_t - 0.05
    phi_raw = np.where(per_hour, phi_c, phi_t)
    # Pool the dispersion over well-observed signatures, then shrink each one toward it.
    well = total >= DISPERSION_PRIOR_WEIGHT
    pooled = float(np.median(phi_raw[well])) if well.any() else DEFAULT_DISPERSION
    pooled = min(max(pooled, 0.0), MAX_DISPERSION)
    phi = (total * phi_raw + DISPERSION_PRIOR_WEIGHT * pooled) / (total + DISPERSION_PRIOR_WEIGHT)
    phi = np.maximum(phi, phi_raw)
    # φ itself is estimated: the tail of a mixture over plausible φ is heavier than at the point
    # estimate, so half a standard error is added (Var of the moment numerator under the gamma-Poisson
    # model: Σ 2(e + φe²)² + 6φ³e⁴, with e = C·w or C/H).
    sum_w3 = float((share**3).sum())
    sum_w4 = float((share**4).sum())
    m2 = np.where(per_hour, 1.0 / H, sum_w2)
    m3 = np.where(per_hour, 1.0 / H**2, sum_w3)
    m4 = np.where(per_hour, 1.0 / H**3, sum_w4)
    c2, c3, c4 = total**2, total**3, total**4
    var_num = 2 * (c2 * m2 + 2 * phi * c3 * m3 + phi**2 * c4 * m4) + 6 * phi**3 * c4 * m4
    den = c2 * m2
    se = np.divide(np.sqrt(var_num), den, out=np.zeros_like(den), where=den > 0)
    phi = np.minimum(phi + PHI_SE_MULTIPLIER * se, MAX_DISPERSION)
    # Variance of the weekly total relative to Poisson: the effective number of counts behind the rate.
    # Σe = C under both models; Σe² = C²Σw² (traffic) or C²/H (clock).
    inflation = 1.0 + phi * total * np.where(per_hour, 1.0 / H, sum_w2)
    shape = (total + JEFFREYS_SHAPE) / inflation
    rate = np.where(per_hour, (total + JEFFREYS_SHAPE) / H, (total + JEFFREYS_SHAPE) / total_t)
    return BaselineModel(rate, per_hour, phi, shape, total_t, H, pooled)


def _moment_dispersion(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Method-of-moments φ for var = μ + φμ²: Σ[(c − e)² − c] / Σe², clipped to [0, MAX_DISPERSION]."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    phi = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return np.clip(phi, 0.0, MAX_DISPERSION)


def predictive(
    model: BaselineModel, n_total: int, exposure: np.ndarray | float, hours: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """(expected, NB shape) of the window count for all M rows; rows >= S are never-seen signatures.

    ``exposure`` and ``hours`` may be arrays (one per look) broadcast against the signatures.
    """
    exposure = np.asarray(exposure, dtype=np.float64)
    hours = np.asarray(hours, dtype=np.float64)
    S = len(model.rate)
    n_new = n_total - S
    scale_t = exposure[..., None] if exposure.ndim else exposure
    scale_h = hours[..., None] if hours.ndim else hours
    mean_old = model.rate * np.where(model.per_hour, scale_h, scale_t)
    inv_k_old = model.dispersion + 1.0 / model.shape + model.dispersion / model.shape
    # Never seen: rate ~ Gamma(½, baseline exposure) — zero counts over the whole baseline.
    mean_new = np.broadcast_to(
        JEFFREYS_SHAPE / model.total_exposure * scale_t, np.shape(mean_old)[:-1] + (n_new,)
    )
    phi0 = model.pooled_dispersion
    inv_k_new = phi0 + 1.0 / JEFFREYS_SHAPE + phi0 / JEFFREYS_SHAPE
    mean = np.concatenate([np.broadcast_to(mean_old, np.shape(mean_new)[:-1] + (S,)), mean_new], axis=-1)
    inv_k = np.concatenate([inv_k_old, np.full(n_new, inv_k_new)])
    inv_k = np.broadcast_to(inv_k, mean.shape)
    return mean, 1.0 / inv_k


def nb_upper_tail(x: np.ndarray, mean: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """P(X >= x) for X ~ NegBin(mean, shape); 1 where x <= 0."""
    from scipy.special import betainc

    x = np.asarray(x, dtype=np.float64)
    mean = np.maximum(np.asarray(mean, dtype=np.float64), 1e-300)
    p = shape / (shape + mean)
    # P(X >= x) = I_{1-p}(x, k) (regularized incomplete beta), for x >= 1.
    out = np.ones(np.broadcast(x, mean, shape).shape)
    pos = x > 0
    if np.any(pos):
        xb, kb, pb = np.broadcast_arrays(x, shape, p)
        out[pos] = betainc(xb[pos], kb[pos], 1.0 - pb[pos])
    return out


def tail_pvalues(x: np.ndarray, mean: np.ndarray, shape: np.ndarray, n_baseline: int) -> np.ndarray:
    """Upper-tail p-values; for never-seen signatures (columns >= n_baseline) conditional on X >= 1.

    Only never-seen signatures that appear are ever tested, and some always do (the long tail), so
    the right question for them is "given that it appeared, is its count surprising?":
    P(X >= x | X >= 1). One occurrence is therefore never evidence by itself.
    """
    p = nb_upper_tail(x, mean, shape)
    if np.shape(p)[-1] > n_baseline:
        new = (slice(None),) * (np.ndim(p) - 1) + (slice(n_baseline, None),)
        m, k = np.asarray(mean)[new], np.asarray(shape)[new]
        p_any = -np.expm1(k * np.log1p(-m / (k + m)))  # P(X >= 1) = 1 - (k / (k + m))^k
        p[new] = np.minimum(1.0, p[new] / np.maximum(p_any, 1e-300))
    return p


def bh_qvalues(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values) along the last axis."""
    p = np.asarray(p, dtype=np.float64)
    m = p.shape[-1]
    if m == 0:
        return p.copy()
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, axis=-1) * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[..., ::-1], axis=-1)[..., ::-1]
    q = np.empty_like(p)
    np.put_along_axis(q, order, np.minimum(ranked, 1.0), axis=-1)
    return q


def gate_counts(
    baseline_hourly: np.ndarray,
    baseline_traffic: np.ndarray,
    window_counts: np.ndarray,
    window_traffic: float,
    window_hours: float,
    alpha: float = ALPHA,
) -> GateResult:
    """The fixed-window gate with every intermediate result (used by the analyzer)."""
    model = fit_baseline(baseline_hourly, baseline_traffic)
    x = np.asarray(window_counts, dtype=np.float64)
    mean, shape = predictive(model, len(x), float(window_traffic), float(window_hours))
    p = tail_pvalues(x, mean, shape, len(model.rate))
    q = bh_qvalues(p)
    flags = q <= alpha
    new = np.arange(len(x)) >= len(model.rate)
    return GateResult(mean, p, q, flags, new)


def joint(results: list[GateResult], alpha: float = ALPHA) -> list[GateResult]:
    """One Benjamini–Hochberg pass over the signatures of several gates of one deploy (exceptions exposed
    to traffic, each judging rule exposed to the traces it judged): the false-discovery budget is shared by
    every signature the deploy is tested on, whatever its exposure. One gate alone is left as it was."""
    p = np.concatenate([r.p_value for r in results]) if results else np.zeros(0)
    q = bh_qvalues(p)
    out, offset = [], 0
    for r in results:
        part = q[offset : offset + len(r.p_value)]
        offset += len(r.p_value)
        out.append(GateResult(r.expected, r.p_value, part, part <= alpha, r.new))
    return out


# --- the harness protocols (gate_bench.py) ----------------------------------------------------------


def bench_gate(
    baseline_hourly: np.ndarray,
    baseline_traffic: np.ndarray,
    window_counts: np.ndarray,
    window_traffic: float,
    window_hours: float,
) -> np.ndarray:
    """Fixed-window gate (gate_bench protocol ``Gate``)."""
    return gate_counts(baseline_hourly, baseline_traffic, window_counts, window_traffic, window_hours).flags


def spending(n_looks: int, alpha: float = ALPHA) -> np.ndarray:
    """Per-look error budget: alpha split evenly over the looks (a Pocock-like linear spending)."""
    return np.full(n_looks, alpha / n_looks)


def sequential_first_flags(
    baseline_hourly: np.ndarray,
    baseline_traffic: np.ndarray,
    window_slices: np.ndarray,
    slice_traffic: np.ndarray,
    slice_hours: float,
    alpha: float = ALPHA,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first flagged look or -1, p-values [M, J], q-values [M, J]) for looks at each slice's end.

    The look after slice j uses the cumulative counts and exposure of slices 0..j only.
    """
    model = fit_baseline(baseline_hourly, baseline_traffic)
    slices = np.asarray(window_slices, dtype=np.float64)
    M, J = slices.shape if slices.ndim == 2 else (len(slices), 0)
    if J == 0:
        return np.full(M, -1, dtype=np.int64), np.ones((M, 0)), np.ones((M, 0))
    cum = np.cumsum(slices, axis=1).T  # [J, M]
    exposure = np.cumsum(np.asarray(slice_traffic, dtype=np.float64))  # [J]
    hours = slice_hours * np.arange(1, J + 1)
    mean, shape = predictive(model, M, exposure, hours)  # [J, M]
    p = tail_pvalues(cum, mean, shape, len(model.rate))
    q = bh_qvalues(p)  # BH within each look
    budget = spending(J, alpha)
    hit = q <= budget[:, None]
    first = np.where(hit.any(axis=0), hit.argmax(axis=0), -1).astype(np.int64)
    return first, p.T, q.T


def bench_gate_seq(
    baseline_hourly: np.ndarray,
    baseline_traffic: np.ndarray,
    window_slices: np.ndarray,
    slice_traffic: np.ndarray,
    slice_hours: float,
) -> np.ndarray:
    """Sequential gate (gate_bench protocol ``SequentialGate``)."""
    return sequential_first_flags(
        baseline_hourly, baseline_traffic, window_slices, slice_traffic, slice_hours
    )[0]


def canary_pvalues(
    canary_counts: np.ndarray, control_counts: np.ndarray, canary_fraction: float
) -> np.ndarray:
    """P(canary share >= observed | total) under Binomial(total, f): bursts and incidents cancel."""
    from scipy.special import betainc

    x = np.asarray(canary_counts, dtype=np.float64)
    n = x + np.asarray(control_counts, dtype=np.float64)
    f = float(canary_fraction)
    out = np.ones_like(x)
    pos = x > 0
    # P(Bin(n, f) >= x) = I_f(x, n - x + 1)
    out[pos] = betainc(x[pos], n[pos] - x[pos] + 1.0, f)
    return out


def gate_canary(
    baseline_hourly: np.ndarray,
    canary_counts: np.ndarray,
    control_counts: np.ndarray,
    canary_fraction: float,
    alpha: float = ALPHA,
) -> GateResult:
    """Canary gate with every intermediate result."""
    x = np.asarray(canary_counts, dtype=np.float64)
    ctl = np.asarray(control_counts, dtype=np.float64)
    p = canary_pvalues(x, ctl, canary_fraction)
    q = bh_qvalues(p)
    S = np.asarray(baseline_hourly).shape[0]
    expected = (x + ctl) * canary_fraction
    new = np.arange(len(x)) >= S
    return GateResult(expected, p, q, q <= alpha, new)


def bench_gate_canary(
    baseline_hourly: np.ndarray,
    baseline_traffic: np.ndarray,
    canary_counts: np.ndarray,
    control_counts: np.ndarray,
    canary_fraction: float,
    window_traffic: float,
    window_hours: float,
) -> np.ndarray:
    """Canary gate (gate_bench protocol ``CanaryGate``)."""
    return gate_canary(baseline_hourly, canary_counts, control_counts, canary_fraction).flags

"""Sample-quality metrics for low-dimensional generative models (the toy DDPM studies).

Three families, each with a one-line description in :data:`DESCRIPTIONS` that the
reports print next to the numbers:

- :func:`study_nll`: the course's score, reproduced exactly so that numbers are
  comparable with the study's report. It is *not* a likelihood (see its docstring).
- :func:`kde_nll`: a Parzen-window negative log-likelihood: a normalised Gaussian
  kernel density fitted to the generated samples, bandwidth chosen on held-out
  real data, mean of ``-log p`` over other held-out real data. This is the main NLL.
- :func:`emd` / :func:`emd_splits`: the exact earth mover's (Wasserstein-1)
  distance with Euclidean ground cost (POT's network simplex), on k disjoint
  subsamples; :func:`sliced_wasserstein` for sample sizes where the exact
  solver's O(n^3) cost is too much.

All functions take NumPy arrays or torch tensors of shape ``(n, d)`` and return
Python floats (or NumPy arrays for per-point values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from trainlab.device import thread_limit, threads_for_step
from trainlab.errors import DataError

DESCRIPTIONS = {
    "nll": "Parzen-window NLL: -mean log p(x) of held-out real points under a normalised Gaussian "
    "KDE of the generated samples (bandwidth chosen on a separate held-out half); "
    "nats per point, lower is better, can be negative; penalises both missing modes and stray samples.",
    "nll_study": "the course's score: -log of the mean over generated points of a Gaussian kernel density of "
    "the real points whose constant does not match its width (integrates to 2^(d/2)), temperature 0.1; "
    "not a likelihood, compare within a dataset only; lower is better; blind to missing modes.",
    "emd": "exact earth mover's (Wasserstein-1) distance, Euclidean ground cost, uniform weights, "
    "in the data's [-1, 1] units; mean and std over k disjoint subsample pairs; lower is better.",
    "emd_ratio": "EMD(generated, held-out real) / EMD(training subsample, held-out real) on equal sizes, "
    "each averaged over 3 subsample draws: 1 means as close as a fresh real sample (the sampling-noise "
    "floor, drawn once per data set and shared by its models), unitless.",
}

DEFAULT_BANDWIDTHS = tuple(float(h) for h in np.geomspace(2e-3, 2.0, 13))


def _as_tensor(x: np.ndarray | torch.Tensor, name: str = "x") -> torch.Tensor:
    t = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2 or t.shape[0] == 0:
        raise DataError(f"{name} must be a non-empty (n, d) array (got shape {tuple(t.shape)})")
    if not torch.isfinite(t).all():
        raise DataError(f"{name} holds NaN or Inf values; the model probably diverged")
    return t


def _as_numpy(x: np.ndarray | torch.Tensor, name: str = "x") -> np.ndarray:
    return _as_tensor(x, name).numpy()


def _check_dims(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape[1] != b.shape[1]:
        raise DataError(f"point sets have different dimensions ({a.shape[1]} and {b.shape[1]})")


def _sq_dists(queries: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(m, n)`` in float64 from coordinate differences.

    Differences keep near pairs exact to rounding (the ``|q|^2 + |r|^2 - 2 q.r`` form
    cancels them away), and for the toy sets' 2 or 3 coordinates they are faster than a
    matrix product with an inner size of 2 (and 3x faster than a loop over coordinates).
    """
    return torch.cdist(queries, refs, compute_mode="donot_use_mm_for_euclid_dist").square_()


_KERNEL_BLOCK = 1 << 19
"""Terms (scales x queries x references) per block of :func:`_log_kernel_sums`: small enough to stay in
a core's cache through the exp and the sum (passes over whole matrices were bound by memory)."""


def _log_kernel_sums(queries: torch.Tensor, refs: torch.Tensor, scales: Sequence[float],
                    dtype: torch.dtype = torch.float64, rows: int | None = None) -> torch.Tensor:
    """``log sum_j exp(-s ||q_i - r_j||^2)`` for every scale ``s`` and query ``q_i``: ``(len(scales), m)`` float64.

    Queries go in blocks of ``rows`` (default: :data:`_KERNEL_BLOCK` terms per block). Every
    sum is taken relative to its nearest reference, whose term is ``exp(0) = 1`` at every
    scale, so one distance block serves all scales and nothing overflows; the exp and the
    sum run in ``dtype`` (float32 is ~1e-6 relative, twice as fast). Exponents are floored at
    the smallest normal number's log: such terms are below rounding next to the nearest
    one's 1, and torch's exp takes a slow path on denormals (5-10x on far-off points).
    Threads follow :func:`trainlab.device.cpu_plan` for one block (a default block is a
    one-thread step; the recipes score inside single-threaded workers anyway).
    """
    scale = torch.as_tensor(list(scales), dtype=torch.float64)
    neg_scale = (-scale).to(dtype)[:, None, None]
    floor = float(math.ceil(math.log(torch.finfo(dtype).tiny)))
    if rows is None:
        rows = max(1, _KERNEL_BLOCK // (len(scale) * refs.shape[0]))
    out = torch.empty(len(scale), queries.shape[0], dtype=torch.float64)
    block_flops = 20.0 * len(scale) * rows * refs.shape[0]  # multiply, floor, exp (~15) and add per term
    with thread_limit(threads_for_step(block_flops, torch.device("cpu"))):  # one thread at the default block
        for i in range(0, queries.shape[0], rows):
            sq = _sq_dists(queries[i:i + rows], refs)
            nearest = sq.amin(1, keepdim=True)
            terms = (sq.sub_(nearest).to(dtype)[None] * neg_scale).clamp_min_(floor).exp_()  # (scales, rows, refs)
            out[:, i:i + rows] = terms.sum(2).double().log_() - scale[:, None] * nearest.T
    return out


# -- the course's score ---------------------------------------------------------------


def study_nll(real: np.ndarray | torch.Tensor, generated: np.ndarray | torch.Tensor,
              temperature: float = 0.1, chunk: int | None = None) -> float:
    """The study's "NLL", computed exactly as the course's ``utils.get_nll(data, samples)``.

    ``-log( mean_i mean_j  (2 pi tau)^(-d/2) exp(-||s_i - x_j||^2 / (4 tau)) )`` with
    ``s_i`` the generated samples, ``x_j`` the real data and ``tau`` the temperature.

    Why it is not a negative log-likelihood: the exponent is that of a Gaussian with
    variance ``2 tau`` while the constant normalises one of variance ``tau``, so each kernel
    integrates to ``2^(d/2)``; it takes ``-log`` of the *mean* likelihood rather than the
    mean of ``-log``, so a few samples in dense regions hide many bad ones; and it is the
    density of the *real* data evaluated at generated points, so a model that puts all
    its samples on one mode scores well. Its value shifts with ``d`` and ``tau``.
    Computed in log space (:func:`_log_kernel_sums`, float64, ``chunk`` samples per block) so
    that far-away samples do not underflow to ``-log(0)``; it equals the direct formula
    wherever that is finite.
    """
    x = _as_tensor(real, "real")
    s = _as_tensor(generated, "generated")
    _check_dims(x, s)
    if temperature <= 0:
        raise DataError(f"temperature must be > 0 (got {temperature})")
    d = x.shape[1]
    per_sample = _log_kernel_sums(s, x, [1.0 / (4.0 * temperature)], rows=chunk)[0]
    log_mean = torch.logsumexp(per_sample, 0) - math.log(s.shape[0] * x.shape[0]) \
        - 0.5 * d * math.log(2 * math.pi * temperature)
    return float(-log_mean)


# -- normalised kernel density ----------------------------------------------------------


def kde_log_density(refs: np.ndarray | torch.Tensor, queries: np.ndarray | torch.Tensor,
                    bandwidths: float | Sequence[float], chunk: int | None = None) -> np.ndarray:
    """``log p(q)`` under the normalised Gaussian KDE ``p = mean_j N(. ; r_j, h^2 I)``.

    Returns an array ``(len(bandwidths), n_queries)`` (or ``(n_queries,)`` for one
    bandwidth). Every bandwidth comes from the same distance blocks of ``chunk`` queries
    (:func:`_log_kernel_sums`); the exp and its sum run in float32, as a log density
    needs ~1e-6 relative accuracy, not 1e-15.
    """
    r = _as_tensor(refs, "refs")
    q = _as_tensor(queries, "queries")
    _check_dims(r, q)
    single = np.isscalar(bandwidths)
    hs = torch.tensor([bandwidths] if single else list(bandwidths), dtype=torch.float64)
    if (hs <= 0).any():
        raise DataError("KDE bandwidths must be > 0")
    d, n = r.shape[1], r.shape[0]
    const = -0.5 * d * torch.log(2 * math.pi * hs**2) - math.log(n)  # (H,)
    logp = _log_kernel_sums(q, r, (0.5 / hs**2).tolist(), dtype=torch.float32, rows=chunk) + const[:, None]
    res = logp.numpy()
    return res[0] if single else res


def select_bandwidth(refs: np.ndarray | torch.Tensor, heldout: np.ndarray | torch.Tensor,
                     bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
                     refine: int = 8) -> tuple[float, np.ndarray]:
    """The bandwidth with the highest mean held-out log density, and that log density.

    The coarse grid ``bandwidths`` is searched first; with ``refine > 0`` that many
    geometrically spaced points between the best point's neighbours are tried next
    (half the cost of a fine grid over the whole range, same answer for unimodal curves).
    """
    grid = sorted(float(h) for h in bandwidths)
    curve = kde_log_density(refs, heldout, grid).mean(axis=1)
    best = int(np.argmax(curve))
    if refine > 0 and len(grid) > 1:
        lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
        fine = [float(h) for h in np.geomspace(lo, hi, refine + 2)[1:-1]]
        fine_curve = kde_log_density(refs, heldout, fine).mean(axis=1)
        grid, curve = grid + fine, np.concatenate([curve, fine_curve])
        best = int(np.argmax(curve))
    return grid[best], float(curve[best])


@dataclass(frozen=True)
class KDEResult:
    nll: float
    """-mean log p over the test points, nats per point."""
    bandwidth: float
    """The bandwidth chosen on the validation points."""
    nll_std_err: float
    """Standard error of ``nll`` over the test points."""


def kde_nll(model_samples: np.ndarray | torch.Tensor, real_heldout: np.ndarray | torch.Tensor,
            bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS, seed: int = 0) -> KDEResult:
    """Parzen-window NLL of held-out real data under a KDE of the model's samples.

    ``real_heldout`` is split (seeded) into a validation half that picks the bandwidth and
    a test half that is scored, so the bandwidth is never tuned on the scored points.
    """
    real = _as_tensor(real_heldout, "real_heldout")
    if real.shape[0] < 4:
        raise DataError("kde_nll needs at least 4 held-out real points")
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(real.shape[0]))
    half = real.shape[0] // 2
    val, test = real[perm[:half]], real[perm[half:]]
    h, _ = select_bandwidth(model_samples, val, bandwidths)
    logp = kde_log_density(model_samples, test, h)
    return KDEResult(nll=float(-logp.mean()), bandwidth=h,
                     nll_std_err=float(logp.std(ddof=1) / math.sqrt(len(logp))))


# -- transport distances ----------------------------------------------------------------


def emd(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Exact W1 between two point clouds with uniform weights and Euclidean ground cost."""
    import ot

    x, y = _as_numpy(a, "a"), _as_numpy(b, "b")
    if x.shape[1] != y.shape[1]:
        raise DataError(f"point sets have different dimensions ({x.shape[1]} and {y.shape[1]})")
    from scipy.spatial.distance import cdist

    # cdist differences coordinates directly; ot.dist's |x|^2+|y|^2-2xy form leaves ~1e-8 noise
    cost = cdist(x, y, metric="euclidean")
    wa = np.full(len(x), 1.0 / len(x))
    wb = np.full(len(y), 1.0 / len(y))
    # the default iteration cap (1e5) stops the simplex early beyond ~500 points
    return float(ot.emd2(wa, wb, cost, numItermax=50_000_000))


def emd_splits(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, k: int = 5,
               n: int = 1000, seed: int = 0) -> tuple[float, float, list[float]]:
    """EMD on ``k`` disjoint, seeded subsamples of size ``n`` from each set.

    Returns (mean, std (ddof=1; 0 for k=1), the k values), like the study's five splits.
    """
    x, y = _as_numpy(a, "a"), _as_numpy(b, "b")
    if k < 1 or n < 1:
        raise DataError(f"emd_splits needs k >= 1 and n >= 1 (got k={k}, n={n})")
    if k * n > min(len(x), len(y)):
        raise DataError(f"emd_splits needs k*n={k * n} points in each set (have {len(x)} and {len(y)}); "
                        "lower k or n")
    rng = np.random.default_rng(seed)
    px, py = rng.permutation(len(x)), rng.permutation(len(y))
    values = [emd(x[px[i * n:(i + 1) * n]], y[py[i * n:(i + 1) * n]]) for i in range(k)]
    std = float(np.std(values, ddof=1)) if k > 1 else 0.0
    return float(np.mean(values)), std, values


def sliced_wasserstein(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor,
                       n_projections: int = 500, p: int = 2, seed: int = 0) -> float:
    """Monte-Carlo sliced Wasserstein-p distance (POT): O(n log n) per projection, any n."""
    import ot

    x, y = _as_numpy(a, "a"), _as_numpy(b, "b")
    if x.shape[1] != y.shape[1]:
        raise DataError(f"point sets have different dimensions ({x.shape[1]} and {y.shape[1]})")
    return float(ot.sliced_wasserstein_distance(x, y, n_projections=n_projections, p=p, seed=seed))


@dataclass(frozen=True)
class EMDFloor:
    """The real-vs-real side of :func:`emd_ratio`, drawn once per data set and shared by its models."""

    heldout_picks: tuple[np.ndarray, ...]
    """One held-out subset per repeat: every model's samples are compared with these."""
    floor: float
    """Mean EMD between each held-out subset and a subset of other real points: what a perfect sampler reaches."""


def emd_floor(real_heldout: np.ndarray | torch.Tensor, real_other: np.ndarray | torch.Tensor, n: int = 2000,
              repeats: int = 3, seed: int = 0) -> EMDFloor:
    """The held-out subsets and the real-vs-real EMD of :func:`emd_ratio` (``n`` points each, ``repeats`` draws).

    ``real_other`` must be disjoint from ``real_heldout`` (e.g. training points). The floor
    depends on the data only, so the models of one data set share it: each is then
    measured against the same denominator (no draw-to-draw noise between them), and the
    exact EMD is solved ``repeats`` times per data set instead of per model.
    """
    h, o = _as_numpy(real_heldout, "real_heldout"), _as_numpy(real_other, "real_other")
    if min(len(h), len(o)) < n:
        raise DataError(f"emd_ratio needs {n} points in each set (have {len(h)} held-out, {len(o)} other)")
    if repeats < 1:
        raise DataError(f"emd_ratio needs repeats >= 1 (got {repeats})")
    rng = np.random.default_rng(seed)
    picks, floor = [], 0.0
    for _ in range(repeats):
        held = h[rng.choice(len(h), n, replace=False)]
        floor += emd(o[rng.choice(len(o), n, replace=False)], held) / repeats
        picks.append(held)
    return EMDFloor(tuple(picks), floor)


def emd_ratio_to(generated: np.ndarray | torch.Tensor, reference: EMDFloor, seed: int = 0) -> tuple[float, float]:
    """(ratio, mean EMD(generated, held-out)) against a precomputed :class:`EMDFloor`.

    Each repeat draws as many generated points as the reference's held-out subset
    (seeded by ``seed``) and compares them with that subset.
    """
    g = _as_numpy(generated, "generated")
    n = len(reference.heldout_picks[0])
    if len(g) < n:
        raise DataError(f"emd_ratio needs {n} points in each set (have {len(g)} generated)")
    rng = np.random.default_rng(seed)
    model = sum(emd(g[rng.choice(len(g), n, replace=False)], held) for held in reference.heldout_picks)
    model /= len(reference.heldout_picks)
    return model / reference.floor, model


def emd_ratio(generated: np.ndarray | torch.Tensor, real_heldout: np.ndarray | torch.Tensor,
              real_other: np.ndarray | torch.Tensor, n: int = 2000, repeats: int = 3,
              seed: int = 0) -> tuple[float, float, float]:
    """(ratio, mean EMD(generated, held-out real), mean EMD(other real, held-out real)), ``n`` points per set.

    ``real_other`` must be disjoint from ``real_heldout`` (e.g. training points): the
    denominator is the distance between two independent real samples of the same size,
    the floor that a perfect sampler would reach. One draw of either EMD varies by
    +-20% on the toy sets, so both are averaged over ``repeats`` seeded draws (the same
    held-out subset on top and bottom of each draw). To score many models of one data
    set, draw the floor once with :func:`emd_floor` and use :func:`emd_ratio_to`.
    """
    if len(_as_numpy(generated, "generated")) < n:
        raise DataError(f"emd_ratio needs {n} points in each set (have {len(generated)} generated)")
    reference = emd_floor(real_heldout, real_other, n=n, repeats=repeats, seed=seed)
    ratio, model = emd_ratio_to(generated, reference, seed=seed + 1)
    return ratio, model, reference.floor


# -- everything the toy studies report for one model ------------------------------------


def sample_quality(generated: np.ndarray | torch.Tensor, heldout: np.ndarray | torch.Tensor,
                   train_ref: np.ndarray | torch.Tensor, *, emd_k: int = 5, emd_n: int = 800,
                   ratio_n: int = 2000, ratio_repeats: int = 3, temperature: float = 0.1,
                   seed: int = 0, floor: EMDFloor | None = None) -> dict[str, float]:
    """The metric set of the ddpm experiments for one model's samples.

    ``heldout`` are real points the model never saw; ``train_ref`` are other real points
    (training data) used only for the EMD noise floor. Keys: ``nll`` (Parzen, nats/point),
    ``nll_bandwidth``, ``nll_study`` (the course's score against ``heldout``), ``emd_mean``,
    ``emd_std`` (k disjoint splits of emd_n), ``emd_ratio``, ``emd_floor``. ``floor`` is the
    data set's :func:`emd_floor` when several models share it (then ``ratio_n`` and
    ``ratio_repeats`` are the floor's); without it one is drawn here.
    Non-finite samples (a diverged model) give NaN everywhere instead of an error.
    """
    g = torch.as_tensor(generated)
    if not bool(torch.isfinite(g).all()):
        keys = ("nll", "nll_bandwidth", "nll_study", "emd_mean", "emd_std", "emd_ratio", "emd_floor")
        return {k: float("nan") for k in keys}
    kde = kde_nll(g, heldout, seed=seed)
    mean, std, _ = emd_splits(g, heldout, k=emd_k, n=emd_n, seed=seed)
    if floor is None:
        floor = emd_floor(heldout, train_ref, n=ratio_n, repeats=ratio_repeats, seed=seed)
    ratio, _ = emd_ratio_to(g, floor, seed=seed + 1)
    return {"nll": kde.nll, "nll_bandwidth": kde.bandwidth,
            "nll_study": study_nll(heldout, g, temperature=temperature),
            "emd_mean": mean, "emd_std": std, "emd_ratio": ratio, "emd_floor": floor.floor}

"""Three steps of hyperopt's TPE computed for a whole mixture at once, with hyperopt's results bit
for bit (pure numpy; tests/test_fast_tpe.py compares them with hyperopt's on random inputs).

- A quantized parameter's density (hp.quniform, qloguniform, qnormal, qlognormal): hyperopt's
  GMM1_lpdf and LGMM1_lpdf loop in Python over every mixture component, one per trial TPE has seen,
  calling normal_cdf / lognormal_cdf once per component. Here each component's increment is
  computed by the same floating-point operations on a (components x samples) array, and the
  increments are added in the loop's order (np.add.accumulate along the components), so every
  density is hyperopt's.
- The split of a parameter's observed values into the trials below and above TPE's loss quantile:
  hyperopt's ap_split_trials builds two sets and walks every observation in Python; here np.isin
  picks the same values in the same order.

Each function takes hyperopt's own (`original`) and hands it every input it does not cover: an
unquantized density (already vectorized in hyperopt), empty or non-vector inputs, a negative bound
for the log-normal (hyperopt raises there), values that are not numbers.
"""

import functools

import numpy as np
from scipy.special import erf

EPS = 1e-12  # hyperopt.tpe.EPS (tests/test_fast_tpe.py pins it)
# From here on, a double's erf is +-1 to the last bit (erfc(6) = 2.2e-17 is under half the spacing
# of doubles below 1); most of a long search's components are that far from a candidate.
SATURATED = 6.0


@functools.lru_cache(maxsize=None)
def saturated_from():
    """SATURATED when the installed scipy's erf gives exactly +-1 at every |z| >= SATURATED
    (checked once, on a dense grid up to where erfc underflows and a geometric one beyond);
    None otherwise, and then erf is computed everywhere."""
    grid = np.concatenate([np.linspace(SATURATED, 40.0, 400_001), np.geomspace(40.0, 1e308, 10_001),
                           [np.inf]])
    holds = bool(np.all(erf(grid) == 1.0) and np.all(erf(-grid) == -1.0))
    return SATURATED if holds else None


def _erf(z):
    """scipy's erf(z), computed only where it is not +-1 to the last bit (NaN included)."""
    limit = saturated_from()
    if limit is None:
        return erf(z)
    inside = ~(np.abs(z) >= limit)
    out = np.sign(z)
    out[inside] = erf(z[inside])
    return out


def number_vectors(*arrays):
    """True when every array is a vector of numbers (bool, int, unsigned or float)."""
    return all(a.ndim == 1 and a.dtype.kind in "fiub" for a in arrays)


def _covered(q, given, weights, mus, sigmas):
    """The quantized case for number vectors, which the whole-array versions compute."""
    return (q is not None and given.size > 0 and len(weights) > 0 and number_vectors(weights, mus, sigmas)
            and given.dtype.kind in "fiub" and len(weights) == len(mus) == len(sigmas))


def _normal_cdf(x, mus, sigmas):
    """hyperopt's normal_cdf(x, mu, sigma), broadcast over x and the components."""
    bottom = np.maximum(np.sqrt(2) * sigmas, EPS)
    return 0.5 * (1 + _erf((x - mus) / bottom))


def _normal_cdfs(x, mus, sigmas):
    """hyperopt's normal_cdf(x, mu, sigma) for every component: (components, samples)."""
    return _normal_cdf(x[None, :], mus[:, None], sigmas[:, None])


def _lognormal_cdfs(x, mus, sigmas):
    """hyperopt's lognormal_cdf(x, mu, sigma) for every component: (components, samples)."""
    with np.errstate(divide="ignore"):
        top = np.log(np.maximum(x, EPS))[None, :] - mus[:, None]
        bottom = np.maximum(np.sqrt(2) * sigmas, EPS)[:, None]
        return 0.5 + 0.5 * _erf(top / bottom)


def _mixture_mass(weights, upper_cdfs, lower_cdfs, size):
    """hyperopt's loop sum: prob += w*cdf(upper) - w*cdf(lower), component after component."""
    increments = weights[:, None] * upper_cdfs
    increments -= weights[:, None] * lower_cdfs
    prob = np.zeros(size, dtype="float64")
    prob += np.add.accumulate(increments, axis=0)[-1]
    return prob


def _accepted(weights, mus, sigmas, low, high):
    """The truncation's mass, as hyperopt's GMM1_lpdf and LGMM1_lpdf compute it."""
    if low is None and high is None:
        return 1
    return np.sum(weights * (_normal_cdf(high, mus, sigmas) - _normal_cdf(low, mus, sigmas)))


def gmm1_lpdf(original):
    """hyperopt's GMM1_lpdf with its quantized case for all components at once."""

    def quantized_gmm1_lpdf(samples, weights, mus, sigmas, low=None, high=None, q=None):
        given, w, m, s = (np.asarray(a) for a in (samples, weights, mus, sigmas))
        if not _covered(q, given, w, m, s):
            return original(samples, weights, mus, sigmas, low=low, high=high, q=q)
        flat = given.flatten()
        upper = flat + q / 2 if high is None else np.minimum(flat + q / 2, high)
        lower = flat - q / 2 if low is None else np.maximum(flat - q / 2, low)
        prob = _mixture_mass(w, _normal_cdfs(upper, m, s), _normal_cdfs(lower, m, s), flat.shape)
        rval = np.log(prob) - np.log(_accepted(w, m, s, low, high))
        rval.shape = given.shape
        return rval

    return quantized_gmm1_lpdf


def lgmm1_lpdf(original):
    """hyperopt's LGMM1_lpdf with its quantized case for all components at once."""

    def quantized_lgmm1_lpdf(samples, weights, mus, sigmas, low=None, high=None, q=None):
        given, w, m, s = (np.asarray(a) for a in (samples, weights, mus, sigmas))
        if not _covered(q, given, w, m, s):
            return original(samples, weights, mus, sigmas, low=low, high=high, q=q)
        flat = given.flatten() if given.ndim != 1 else given
        upper = flat + q / 2 if high is None else np.minimum(flat + q / 2, np.exp(high))
        lower = flat - q / 2 if low is None else np.maximum(flat - q / 2, np.exp(low))
        lower = np.maximum(0, lower)
        if upper.min() < 0:  # hyperopt's lognormal_cdf raises ValueError on it
            return original(samples, weights, mus, sigmas, low=low, high=high, q=q)
        prob = _mixture_mass(w, _lognormal_cdfs(upper, m, s), _lognormal_cdfs(lower, m, s),
                             flat.shape)
        rval = np.log(prob) - np.log(_accepted(w, m, s, low, high))
        rval.shape = given.shape
        return rval

    return quantized_lgmm1_lpdf


def split_trials(original, default_cap):
    """hyperopt's ap_split_trials (whose gamma_cap defaults to `default_cap`), picking the
    observations below and above by np.isin."""

    def split(o_idxs, o_vals, l_idxs, l_vals, gamma, *rest, **kwargs):
        cap = rest[0] if rest else kwargs.get("gamma_cap", default_cap)
        ids, values, loss_ids, losses = (np.asarray(a) for a in (o_idxs, o_vals, l_idxs, l_vals))
        if len(rest) > 1 or set(kwargs) - {"gamma_cap"} or not (
                number_vectors(ids, values, loss_ids, losses) and len(ids) == len(values)):
            return original(o_idxs, o_vals, l_idxs, l_vals, gamma, *rest, **kwargs)
        n_below = min(int(np.ceil(gamma * np.sqrt(len(losses)))), cap)
        order = np.argsort(losses)
        below = values[np.isin(ids, loss_ids[order[:n_below]])]
        above = values[np.isin(ids, loss_ids[order[n_below:]])]
        # hyperopt's np.asarray of an empty list is float64, whatever the values' type
        return (below if below.size else np.asarray([]), above if above.size else np.asarray([]))

    return split

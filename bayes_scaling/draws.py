"""Posterior draws of the small models beyond loss laws (batch-size sweeps, IsoFLOP parabolas, power laws
through points with errors), sampled with the package's one NUTS machinery.

:func:`sample_model` runs :func:`~bayes_scaling.sampling.run_nuts` (chains started at Laplace draws around
the posterior mode, dense mass matrix) on one NumPyro model; :func:`sample_models` runs the same model on
many padded, masked datasets in one compiled call (``sampling.run_families``: vmapped on GPU/TPU, one after
another in a compiled loop on CPU, sharded over the devices there are). numpyro's shrinkage of the adapted mass matrix is on here (unlike
for loss laws): these models have tens of parameters (one vertex, height and curvature per budget), more
than the first warm-up window has draws, and an unshrunk dense estimate is then singular. Both return :class:`Draws`:
arrays ``(chain, draw, ...)`` per site,
sample stats named as arviz names them, and :meth:`Draws.diagnostics` in plain words (divergences, R-hat,
bulk and tail ESS, never hidden).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from .diagnostics import Health, health
from .keys import as_key, seed_record
from .posterior import DEFAULT_PROB, interval

__all__ = ["Draws", "FromSampler", "sample_model", "sample_models", "quantiles"]


def quantiles(x, prob: float = DEFAULT_PROB) -> dict[str, float]:
    """Median and equal-tailed interval of mass ``prob`` of draws ``x`` (any shape, pooled)."""
    lo, hi = interval(x, prob)
    return {"median": float(np.median(np.asarray(x, float))), "lo": lo, "hi": hi}


@dataclass(frozen=True, eq=False)
class Draws:
    """NUTS draws of one model: ``draws[site]`` is ``(chain, draw, ...)``; ``sample_stats`` holds
    ``diverging``, ``acceptance_rate``, ``n_steps``, ``step_size``, ``energy`` as ``(chain, draw)``;
    ``watch`` names the scalar (or vector) sites whose R-hat and ESS the health check reads."""

    draws: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray]
    watch: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    def flat(self, name: str) -> np.ndarray:
        """Draws of a site with chains pooled: ``(chain * draw, ...)``."""
        x = self.draws[name]
        return x.reshape((-1,) + x.shape[2:])

    def health(self) -> Health:
        """Sampler health over the watched sites (every element of a vector site, named ``site[i]``)."""
        named = {}
        for name in self.watch:
            x = np.asarray(self.draws[name], float)
            x = x.reshape(x.shape[0], x.shape[1], -1)
            for j in range(x.shape[2]):
                if np.ptp(x[:, :, j]) > 0:
                    named[name if x.shape[2] == 1 else f"{name}[{j}]"] = x[:, :, j]
        return health(named, self.sample_stats["diverging"])

    def diagnostics(self) -> dict[str, Any]:
        """``{"ok", "divergences", "max_r_hat", "min_ess_bulk", "min_ess_tail", "warnings"}``: :meth:`health` as a dict."""
        return self.health().to_dict()

    def to_arviz(self, *, kind: str = "", observed: Mapping[str, Any] | None = None):
        """arviz InferenceData: every site in ``posterior`` (dims chain, draw, then ``<site>_dim_i``), the sample stats,
        and ``observed`` (what the model was fitted to) as constant data; ``kind`` names the analysis in the attrs."""
        import json

        import arviz as az

        idata = az.from_dict(posterior={k: np.asarray(v) for k, v in self.draws.items()},
                             sample_stats={k: np.asarray(v) for k, v in self.sample_stats.items()},
                             constant_data={k: np.asarray(v) for k, v in (observed or {}).items()})
        idata.posterior.attrs.update({"analysis": kind, "watch": json.dumps(list(self.watch)),
                                      "settings": json.dumps(self.settings, default=str),
                                      "inference_library": "numpyro", "created_by": "bayes_scaling"})
        return idata


class FromSampler:
    """``health()``, ``diagnostics()`` and ``to_arviz()`` of an analysis result whose draws come from one :class:`Draws`,
    its ``sampler`` (``ANALYSIS`` names the analysis in the arviz attributes; ``observed``, where the result has it,
    goes in as constant data)."""

    ANALYSIS = ""

    def health(self) -> Health:
        """Sampler health (:class:`~bayes_scaling.diagnostics.Health`)."""
        return self.sampler.health()

    def diagnostics(self) -> dict[str, Any]:
        return self.sampler.diagnostics()

    def to_arviz(self):
        """arviz InferenceData of the sampled model (:meth:`Draws.to_arviz`)."""
        return self.sampler.to_arviz(kind=self.ANALYSIS, observed=getattr(self, "observed", None))


def _settings(num_warmup, num_samples, num_chains, target_accept, chain_method):
    return dict(dense_mass=True, target_accept=float(target_accept), max_tree_depth=10, num_warmup=int(num_warmup),
                num_samples=int(num_samples), num_chains=int(num_chains), chain_method=chain_method, regularize=True)


def sample_model(model, args, values: Mapping[str, Any], *, watch: Sequence[str], seed: int = 0,
                 num_warmup: int = 500, num_samples: int = 500, num_chains: int = 4, target_accept: float = 0.9,
                 chain_method: str = "auto") -> Draws:
    """NUTS on ``model(*args)`` started around ``values`` (sample-site values near the mode) via
    :func:`~bayes_scaling.sampling.run_nuts`."""
    from .sampling import run_nuts

    samples, stats, laplace_ok, method = run_nuts(
        model, args, values, seed=seed, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
        chain_method=chain_method, target_accept=target_accept, regularize_mass_matrix=True)
    return Draws(draws=samples, sample_stats=stats, watch=tuple(watch),
                 settings={"num_warmup": num_warmup, "num_samples": num_samples, "num_chains": num_chains,
                           "seed": seed_record(seed), "chain_method": method, "target_accept": target_accept,
                           "init": "mode + Laplace draws" if laplace_ok else "mode + small jitter"})


def sample_models(model, args_list: Sequence[Any], values_list: Sequence[Mapping[str, Any]], *, watch: Sequence[str],
                  seed: int = 0, num_warmup: int = 500, num_samples: int = 500, num_chains: int = 4,
                  target_accept: float = 0.9, family_chunk: int | None = None, devices: int | None = None) -> list[Draws]:
    """The same model on many datasets in one compiled call. Every ``args`` must have the same shapes
    (pad and mask first); each dataset adapts its own step size and mass matrix and gets its own
    :class:`Draws`."""
    from .fitting import on_accelerator
    from .sampling import laplace_inits, run_families

    key = as_key(seed)
    inits, keys = [], []
    for i, (a, v) in enumerate(zip(args_list, values_list)):
        z0, _, chain_keys = laplace_inits(jax.random.fold_in(key, i), model, a, v, num_chains, 1.0)
        inits.append(z0)
        keys.append(chain_keys)
    stack = lambda trees: jax.tree_util.tree_map(lambda *x: np.stack([np.asarray(v) for v in x]), *trees)
    F = len(args_list)
    keys = np.stack(keys)
    gpu = on_accelerator()
    settings = _settings(num_warmup, num_samples, num_chains, target_accept, "vectorized" if gpu else "sequential")
    samples, stats = run_families(model, keys, stack(inits), stack(list(args_list)), family_chunk=family_chunk,
                                  devices=devices, **settings)
    out = []
    for i in range(F):
        out.append(Draws(draws={k: np.asarray(v[i]) for k, v in samples.items()},
                         sample_stats={k: np.asarray(v[i]) for k, v in stats.items()}, watch=tuple(watch),
                         settings=dict(settings, seed=seed, batch_of=F, index=i)))
    return out

"""Scaling laws, each declared once.

A :class:`Law` holds its inputs (e.g. ``("N", "D")``), its parameters named by the paper's symbols, each
parameter's prior, and one scalar function ``log_loss(params, inputs)`` giving the *log* of the predicted
loss of one run from one parameter dict. Every consumer (point fits, derived quantities, and later NUTS and
batch fits) uses that one function, vmapped over runs, starts, draws or families.

Parameters are fitted in "fit space": the log of the value for positive scale parameters (``log=True``:
E, A, B, ...), the value itself for exponents (``log=False``), as in the Chinchilla/Epoch protocol. Fit space is
only the optimiser's path: the constraint on a parameter is its prior's support (a scale fitted in log space must
have a prior on the positive reals, checked when the law is made), and a value outside it has density zero.

>>> import jax.numpy as jnp
>>> law = get_law("chinchilla")
>>> p = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
>>> round(float(law.predict(p, {"N": 1e9, "D": 2e10})), 2)
2.58
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from .defaults import FLOPS_PER_PARAM_TOKEN
from .priors import positive_support, prior_text, prior_token
from .tying import tie_law

__all__ = [
    "Param",
    "Law",
    "get_law",
    "list_laws",
    "register_law",
    "chinchilla",
    "kaplan",
    "power_law_floor",
    "power_law",
    "data_constrained",
    "MUENNIGHOFF_BASE",
    "prior_text",
]


def _xp(x):
    """NumPy for NumPy values (no device round trip, no compile of one small op), jax.numpy for the rest."""
    return np if isinstance(x, (np.ndarray, np.generic, float, int)) else jnp


_WITH_PRIORS: dict = {}


@dataclass(frozen=True, eq=False)
class Param:
    """One parameter of a law.

    name:   the paper's symbol (``"E"``, ``"alpha"``, ``"R_D_star"``).
    prior:  a numpyro distribution over the value as the user knows it; its support is the constraint.
    log:    fit in log space (positive scale parameters) instead of on the raw value (exponents).
    starts: start values *in fit space* for the multistart grid.
    doc:    one line saying what the parameter means.
    """

    name: str
    prior: Any
    log: bool = True
    starts: tuple[float, ...] = (0.0,)
    doc: str = ""

    def to_fit(self, value):
        xp = _xp(value)
        return xp.log(value) if self.log else xp.asarray(value)

    def from_fit(self, theta):
        return _xp(theta).exp(theta) if self.log else theta


@dataclass(frozen=True)
class Law:
    """A scaling law declared once.

    ``log_loss(params, inputs)`` maps one parameter dict (natural values keyed by symbol, fixed ones
    included) and one run's inputs (scalars keyed by input name) to the log of the predicted loss.
    ``optimum(params, C)``, where given, is the closed-form compute-optimal ``(N_opt, D_opt)`` under
    C = 6ND, and ``compute_for_loss(params, loss)`` the closed-form compute whose optimal loss is ``loss``;
    derived quantities fall back to jit-safe numeric solves without them (and tests hold the two together).

    ``centering`` lists terms ``(scale, exponent, input, sign)`` meaning the law holds ``scale * input^(-sign *
    exponent)``; the posterior samples such a scale as the term's value at the data's geometric mean of the
    input (log T = log scale - sign * exponent * log x0), which removes the scale-exponent ridge.

    ``linear`` names the positive scale parameters the predicted *loss* is linear in when the others are held
    (Chinchilla: E, A, B); point fits then solve them in closed form on a grid of the others
    (:mod:`bayes_scaling.varpro`). The claim is checked by the tests for every built-in law.

    Laws compare and hash by value (same declaration, same fixed values), so jitted fitters compile once
    per law, not once per call.
    """

    name: str
    formula: str
    inputs: tuple[str, ...]
    params: tuple[Param, ...]
    log_loss_fn: Callable[[Mapping[str, Any], Mapping[str, Any]], Any]
    fixed: tuple[tuple[str, float], ...] = ()
    optimum: Callable[[Mapping[str, Any], Any], tuple[Any, Any]] | None = None
    compute_for_loss: Callable[[Mapping[str, Any], Any], Any] | None = None
    reference: str = ""
    centering: tuple[tuple[str, str, str, float], ...] = ()
    starts_override: tuple[tuple[float, ...], ...] | None = field(default=None)
    linear: tuple[str, ...] = ()
    ties: tuple[tuple[str, str], ...] = ()  # (tied, target): parameters left out, equal to their target (Law.tie)

    def __post_init__(self):
        for p in self.params:
            if p.log and not positive_support(p.prior):
                raise ValueError(f"law {self.name!r}: {p.name} is fitted in log space (a positive scale), so its prior must "
                                 f"be on the positive reals (the prior's support is the constraint); {prior_text(p.prior)} is not")

    # ---- parameter bookkeeping -------------------------------------------------------------
    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def fixed_values(self) -> dict[str, float]:
        return dict(self.fixed)

    @property
    def free_params(self) -> tuple[Param, ...]:
        fixed = self.fixed_values
        return tuple(p for p in self.params if p.name not in fixed)

    @property
    def free_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.free_params)

    @property
    def num_free(self) -> int:
        return len(self.free_params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ValueError(f"law {self.name!r} has no parameter {name!r}; its parameters are {', '.join(self.param_names)}")

    def fix(self, **values: float) -> Law:
        """Return the same law with some parameters held at given values (natural scale).

        >>> law = get_law("chinchilla").fix(alpha=0.34)
        >>> law.free_names
        ('E', 'A', 'B', 'beta')
        """
        fixed = self.fixed_values
        for name, value in values.items():
            p = self.param(name)
            value = float(value)
            if not np.isfinite(value):
                raise ValueError(f"cannot fix {name} of law {self.name!r} to {value}: not finite")
            if p.log and value <= 0:
                raise ValueError(f"cannot fix {name} of law {self.name!r} to {value}: it must be positive")
            fixed[name] = value
        if len(fixed) == len(self.params):
            raise ValueError(f"law {self.name!r}: every parameter is fixed; nothing left to fit")
        ordered = tuple((p.name, fixed[p.name]) for p in self.params if p.name in fixed)
        return dataclasses.replace(self, fixed=ordered, starts_override=None)

    def tie(self, **ties: str) -> Law:
        """The same law with parameters set equal to others, e.g. ``law.tie(beta="alpha")`` (one exponent for both
        terms); the tied parameter leaves the fit and its draws are copies of its target's (:mod:`bayes_scaling.tying`)."""
        return tie_law(self, ties)

    def with_starts(self, grid: Mapping[str, tuple[float, ...]]) -> Law:
        """Return the law with other start values (fit space) for some free parameters."""
        per = []
        for p in self.free_params:
            per.append(tuple(float(v) for v in grid.get(p.name, p.starts)))
        unknown = set(grid) - set(self.free_names)
        if unknown:
            raise ValueError(f"law {self.name!r}: no free parameter(s) {sorted(unknown)} to set starts for")
        return dataclasses.replace(self, starts_override=tuple(per))

    def with_priors(self, priors: Mapping[str, Any] | None) -> Law:
        """The same law with some free parameters' priors replaced (``{"alpha": numpyro.distributions...}``).
        A prior's support is its parameter's constraint, so a parameter the law needs positive (a scale, fitted in
        log space) takes only a prior on the positive reals. The same priors give the same law object (one
        compiled program per law)."""
        if not priors:
            return self
        unknown = set(priors) - set(self.free_names)
        if unknown:
            raise ValueError(f"priors given for {sorted(unknown)}, which are not free parameters of law {self.name!r} "
                             f"({', '.join(self.free_names)})")
        for name, prior in priors.items():
            if not isinstance(prior, dist.Distribution):
                raise ValueError(f"prior for {name!r} must be a numpyro distribution, not {type(prior).__name__}")
            if self.param(name).log and not positive_support(prior):
                raise ValueError(f"prior for {name!r} of law {self.name!r} must be on the positive reals (its support is "
                                 f"the constraint, and {name} is a positive scale); {prior_text(prior)} is not")
        key = (self, tuple(sorted((k, prior_token(v)) for k, v in priors.items())))
        if key not in _WITH_PRIORS:
            params = tuple(dataclasses.replace(p, prior=priors[p.name]) if p.name in priors else p for p in self.params)
            _WITH_PRIORS[key] = dataclasses.replace(self, params=params)
        return _WITH_PRIORS[key]

    def params_from_theta(self, theta) -> dict[str, Any]:
        """Fit-space vector (free parameters, in declaration order) -> natural parameter dict."""
        out: dict[str, Any] = {}
        i = 0
        fixed = self.fixed_values
        for p in self.params:
            if p.name in fixed:
                out[p.name] = _xp(theta).asarray(fixed[p.name], dtype=theta.dtype)
            else:
                out[p.name] = p.from_fit(theta[..., i])
                i += 1
        for tied, target in self.ties:
            out[tied] = out[target]
        return out

    def theta_from_params(self, params: Mapping[str, Any]):
        """Natural parameter dict -> fit-space vector of the free parameters."""
        return jnp.stack([p.to_fit(jnp.asarray(params[p.name])) for p in self.free_params], axis=-1)

    def start_grid(self) -> np.ndarray:
        """The multistart grid in fit space, shape ``(num_starts, num_free)`` (Cartesian product)."""
        per = self.starts_override or tuple(p.starts for p in self.free_params)
        return np.array(list(itertools.product(*per)), dtype=float).reshape(-1, self.num_free)

    @property
    def cache_token(self) -> str | None:
        """A text naming this law's whole declaration, under which compiled programs of it may be stored between
        processes (:mod:`bayes_scaling.compile_cache`); ``None`` for a law whose functions live outside this
        package (a user's code can change under the same name, so its programs are compiled per process)."""
        fns = [getattr(f, "fn", f) for f in (self.log_loss_fn, self.optimum, self.compute_for_loss) if f is not None]
        if not all((getattr(f, "__module__", "") or "").startswith("bayes_scaling.") for f in fns):
            return None
        params = [(p.name, prior_token(p.prior), p.log, p.starts) for p in self.params]
        return repr((self.name, self.formula, self.inputs, params, self.fixed, self.centering, self.starts_override, self.linear,
                     self.ties))

    # ---- evaluation --------------------------------------------------------------------------
    def log_loss(self, params: Mapping[str, Any], inputs: Mapping[str, Any]):
        """Log of the predicted loss of one run (scalars in, scalar out)."""
        return self.log_loss_fn(params, inputs)

    def predict(self, params: Mapping[str, Any], inputs: Mapping[str, Any]):
        """Predicted loss; inputs may be arrays of runs (vmapped over the leading axis)."""
        return jnp.exp(self.log_loss_runs(params, inputs))

    def log_loss_runs(self, params: Mapping[str, Any], inputs: Mapping[str, Any]):
        """``log_loss`` vmapped over runs: ``inputs`` holds equal-length 1-D arrays (or scalars)."""
        inputs = {k: jnp.asarray(inputs[k]) for k in self.inputs}
        ndim = max(v.ndim for v in inputs.values())
        if ndim == 0:
            return self.log_loss_fn(params, inputs)
        inputs = {k: jnp.broadcast_to(v, jnp.broadcast_shapes(*[w.shape for w in inputs.values()])) for k, v in inputs.items()}
        return jax.vmap(lambda x: self.log_loss_fn(params, x))(inputs)

    def describe(self) -> str:
        lines = [f"{self.name}: {self.formula}", f"  inputs: {', '.join(self.inputs)}"]
        fixed = self.fixed_values
        for p in self.params:
            tag = f" = {fixed[p.name]:g} (fixed)" if p.name in fixed else ""
            prior = "" if tag else f" [prior {prior_text(p.prior)}]"
            lines.append(f"  {p.name:<9}{tag} {p.doc}{prior}")
        if self.reference:
            lines.append(f"  source: {self.reference}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Built-in laws
# ---------------------------------------------------------------------------------------------

_EXP_GRID = (0.0, 0.5, 1.0, 1.5, 2.0)  # METHODS §1.1
_LOGSCALE_GRID = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
_LOGE_GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)


def _lse(*terms):
    return jax.scipy.special.logsumexp(jnp.stack(terms))


def _chinchilla_log_loss(p, x):
    # log L = LSE(log A - alpha log N, log B - beta log D, log E)
    return _lse(
        jnp.log(p["A"]) - p["alpha"] * jnp.log(x["N"]),
        jnp.log(p["B"]) - p["beta"] * jnp.log(x["D"]),
        jnp.log(p["E"]),
    )


def chinchilla_log_G(p):
    """log G, G = (alpha A / (beta B))^(1/(alpha+beta)) (METHODS §1.2); N_opt = G (C/6)^(beta/(alpha+beta))."""
    return (jnp.log(p["alpha"] * p["A"]) - jnp.log(p["beta"] * p["B"])) / (p["alpha"] + p["beta"])


def _chinchilla_optimum(p, C):
    # METHODS §1.2: N_opt = G (C/6)^(beta/(alpha+beta)), D_opt = G^-1 (C/6)^(alpha/(alpha+beta))
    s = p["alpha"] + p["beta"]
    logG = chinchilla_log_G(p)
    logc = jnp.log(C) - jnp.log(FLOPS_PER_PARAM_TOKEN)
    return jnp.exp(logG + p["beta"] / s * logc), jnp.exp(-logG + p["alpha"] / s * logc)


def _chinchilla_compute_for_loss(p, loss):
    # METHODS §1.2: L*(C) - E = K (C/6)^(-alpha beta/(alpha+beta)), K = A G^-alpha + B G^beta; inf when loss <= E
    s = p["alpha"] + p["beta"]
    logG = chinchilla_log_G(p)
    logK = jnp.logaddexp(jnp.log(p["A"]) - p["alpha"] * logG, jnp.log(p["B"]) + p["beta"] * logG)
    excess = loss - p["E"]
    logC = jnp.log(FLOPS_PER_PARAM_TOKEN) - s / (p["alpha"] * p["beta"]) * (jnp.log(jnp.where(excess > 0, excess, 1.0)) - logK)
    return jnp.where(excess > 0, jnp.exp(logC), jnp.inf)


def chinchilla() -> Law:
    """Hoffmann et al. 2022: L(N, D) = E + A/N^alpha + B/D^beta."""
    return Law(
        name="chinchilla",
        formula="L(N, D) = E + A / N^alpha + B / D^beta",
        inputs=("N", "D"),
        params=(
            Param("E", dist.LogNormal(0.5, 0.5), True, _LOGE_GRID, "irreducible loss (nats/token)"),
            Param("A", dist.LogNormal(6.0, 3.0), True, _LOGSCALE_GRID, "model-size term scale"),
            Param("B", dist.LogNormal(6.0, 3.0), True, _LOGSCALE_GRID, "data term scale"),
            Param("alpha", dist.LogNormal(np.log(0.33), 0.5), False, _EXP_GRID, "model-size exponent"),
            Param("beta", dist.LogNormal(np.log(0.33), 0.5), False, _EXP_GRID, "data exponent"),
        ),
        log_loss_fn=_chinchilla_log_loss,
        optimum=_chinchilla_optimum,
        compute_for_loss=_chinchilla_compute_for_loss,
        centering=(("A", "alpha", "N", 1.0), ("B", "beta", "D", 1.0)),
        linear=("E", "A", "B"),
        reference="Hoffmann et al. 2022 (arXiv:2203.15556); fit protocol of Besiroglu et al. 2024 (arXiv:2404.10102)",
    )


def _kaplan_log_loss(p, x):
    # L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D
    r = p["alpha_N"] / p["alpha_D"]
    return p["alpha_D"] * _lse(r * (jnp.log(p["N_c"]) - jnp.log(x["N"])), jnp.log(p["D_c"]) - jnp.log(x["D"]))


def kaplan() -> Law:
    """Kaplan et al. 2020, eq. 1.5: L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D."""
    return Law(
        name="kaplan",
        formula="L(N, D) = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D",
        inputs=("N", "D"),
        params=(
            Param("N_c", dist.LogNormal(30.0, 5.0), True, (25.0, 30.0, 35.0), "model-size scale"),
            Param("D_c", dist.LogNormal(30.0, 5.0), True, (25.0, 30.0, 35.0), "data scale"),
            Param("alpha_N", dist.LogNormal(np.log(0.08), 0.7), False, (0.05, 0.1, 0.2), "model-size exponent"),
            Param("alpha_D", dist.LogNormal(np.log(0.1), 0.7), False, (0.05, 0.1, 0.2), "data exponent"),
        ),
        log_loss_fn=_kaplan_log_loss,
        reference="Kaplan et al. 2020 (arXiv:2001.08361): alpha_N=0.076, alpha_D=0.103, N_c=6.4e13, D_c=1.8e13",
    )


@dataclasses.dataclass(frozen=True)
class _PowerLoss:
    """log(k x^p), or with ``floor`` log(E + A x^-alpha), at input ``x`` (module level: the law pickles, compares by value)."""

    x: str
    floor: bool

    def __call__(self, p, inp):
        if self.floor:
            return _lse(jnp.log(p["A"]) - p["alpha"] * jnp.log(inp[self.x]), jnp.log(p["E"]))
        return jnp.log(p["k"]) + p["p"] * jnp.log(inp[self.x])


def power_law_floor(x: str = "C") -> Law:
    """Single power law with a floor: y = E + A x^-alpha (input ``x`` names a run column, default C)."""
    return Law(
        name="power_law_floor",
        formula=f"y = E + A * {x}^-alpha",
        inputs=(x,),
        params=(
            Param("E", dist.LogNormal(0.5, 1.0), True, _LOGE_GRID, "floor (irreducible value)"),
            Param("A", dist.LogNormal(5.0, 5.0), True, (0.0, 5.0, 10.0, 15.0, 20.0, 25.0), "scale"),
            Param("alpha", dist.LogNormal(np.log(0.2), 1.0), False, (0.05, 0.1, 0.2, 0.4, 0.8, 1.6), "exponent"),
        ),
        log_loss_fn=_PowerLoss(x, floor=True),
        centering=(("A", "alpha", x, 1.0),),
        linear=("E", "A"),
        reference="generic form (METHODS §1.5)",
    )


def power_law(x: str = "C") -> Law:
    """Pure power law y = k x^p (e.g. DeepSeek's B_opt = 0.2920 C^0.3271)."""
    return Law(
        name="power_law",
        formula=f"y = k * {x}^p",
        inputs=(x,),
        params=(
            Param("k", dist.LogNormal(0.0, 10.0), True, (-10.0, 0.0, 10.0), "coefficient"),
            Param("p", dist.Normal(0.0, 1.0), False, (-0.5, 0.0, 0.5), "exponent (any sign)"),
        ),
        log_loss_fn=_PowerLoss(x, floor=False),
        centering=(("k", "p", x, -1.0),),
        linear=("k",),
        reference="DeepSeek LLM 2024 (arXiv:2401.02954), Step Law 2025 (METHODS §1.5)",
    )


def _data_constrained_log_loss(p, x):
    # Muennighoff et al. 2023 (METHODS §1.4), in logs; U_N = min(N, N_opt(C_U)) with N_opt(C_U) = G (U G)^(beta/alpha)
    logN, logD, logU = jnp.log(x["N"]), jnp.log(x["D"]), jnp.log(x["U"])
    logG = chinchilla_log_G(p)
    log_UN = jnp.minimum(logN, logG + p["beta"] / p["alpha"] * (logU + logG))
    R_N = jnp.expm1(logN - log_UN)  # N / U_N - 1 >= 0
    log_UD = jnp.minimum(logD, logU)  # unique tokens seen: all of D when D < U (under one epoch)
    R_D = jnp.expm1(logD - log_UD)  # repetitions beyond the first epoch, >= 0
    log_Np = log_UN + jnp.log1p(-p["R_N_star"] * jnp.expm1(-R_N / p["R_N_star"]))
    log_Dp = log_UD + jnp.log1p(-p["R_D_star"] * jnp.expm1(-R_D / p["R_D_star"]))
    return _lse(
        jnp.log(p["A"]) - p["alpha"] * log_Np,
        jnp.log(p["B"]) - p["beta"] * log_Dp,
        jnp.log(p["E"]),
    )


#: base constants of Muennighoff et al. (log-space a, b, e, alpha, beta = 6.255414, 7.3049974, 0.6254804, 0.3526596, 0.3526596)
MUENNIGHOFF_BASE = {
    "A": float(np.exp(6.255414)),
    "B": float(np.exp(7.3049974)),
    "E": float(np.exp(0.6254804)),
    "alpha": 0.3526596,
    "beta": 0.3526596,
}


def data_constrained() -> Law:
    """Muennighoff et al. 2023: Chinchilla form with effective N', D' under repeated data (inputs N, D, U)."""
    chin = chinchilla().params
    return Law(
        name="data_constrained",
        formula=(
            "L(N, D, U) = E + A / N'^alpha + B / D'^beta;  D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)), U_D = min(D, U), R_D = D/U_D - 1;  "
            "N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)), U_N = min(N, N_opt(U)), R_N = N/U_N - 1"
        ),
        inputs=("N", "D", "U"),
        params=chin
        + (
            Param("R_D_star", dist.LogNormal(np.log(15.0), 1.5), True, (0.0, 1.0, 2.0, 3.0, 4.0, 5.0), "data repetition decay"),
            Param("R_N_star", dist.LogNormal(np.log(5.0), 1.5), True, (0.0, 1.0, 2.0, 3.0, 4.0, 5.0), "excess-parameter decay"),
        ),
        log_loss_fn=_data_constrained_log_loss,
        centering=(("A", "alpha", "N", 1.0), ("B", "beta", "D", 1.0)),
        reference="Muennighoff et al. 2023 (arXiv:2305.16264); base constants fitted by the authors (METHODS §1.4)",
    )


_REGISTRY: dict[str, Callable[..., Law]] = {}


def register_law(name: str, factory: Callable[..., Law]) -> None:
    """Make a law available by name to :func:`get_law`, the fitters and the CLI.

    ``factory(**kwargs)`` returns the :class:`Law`; its results are cached per keyword set, so the same
    name gives the same object (and jitted code compiled for it is reused).
    """
    _REGISTRY[name] = functools.lru_cache(maxsize=None)(factory)


for _f in (chinchilla, kaplan, power_law_floor, power_law, data_constrained):
    register_law(_f.__name__, _f)


def get_law(name: str | Law, **kwargs) -> Law:
    """A law by name (``kwargs`` go to its factory, e.g. ``x="N"`` for single-variable laws)."""
    if isinstance(name, Law):
        return name
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown law {name!r}; known laws: {', '.join(sorted(_REGISTRY))}") from None
    try:
        return factory(**kwargs)
    except TypeError as err:
        raise ValueError(f"law {name!r}: {err}") from None


def list_laws() -> list[Law]:
    """Every registered law with its default options."""
    return [f() for f in _REGISTRY.values()]

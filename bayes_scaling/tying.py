"""Tied parameters: a law in which some parameters equal others (papers fit Chinchilla with alpha = beta).

:meth:`Law.tie <bayes_scaling.laws.Law.tie>` (``law.tie(beta="alpha")``) returns a new law whose declared
parameters leave out the tied ones; its functions fill each tied value from its target before calling the
original law's, so every consumer (point fits, the posterior, derived quantities, forecasts) sees one law with
fewer parameters and needs nothing of its own. The tied parameter's prior is dropped (the target's prior holds
the shared value); draws and fits report the tied parameter as a copy of its target (:func:`complete`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Tied", "tie_law", "parse_ties", "complete"]


@dataclasses.dataclass(frozen=True)
class Tied:
    """``fn(params, *args)`` with each tied parameter set to its target's value first: ``ties`` holds
    ``(tied, target)`` pairs. Compares by value, so the same tie gives the same law (one compiled program)."""

    fn: Callable
    ties: tuple[tuple[str, str], ...]

    def __call__(self, params: Mapping[str, Any], *args):
        return self.fn(complete(params, self.ties), *args)


def complete(params: Mapping[str, Any], ties) -> dict[str, Any]:
    """``params`` with each tied parameter filled in from its target (``ties``: ``(tied, target)`` pairs)."""
    out = dict(params)
    for tied, target in ties:
        out[tied] = out[target]
    return out


def parse_ties(items, option: str = "--tie") -> dict[str, str]:
    """``["beta=alpha"]`` -> ``{"beta": "alpha"}`` (the CLI's ``--tie``), one clear error for a malformed item."""
    out = {}
    for item in items:
        name, sep, target = str(item).partition("=")
        if not sep or not name.strip() or not target.strip():
            raise ValueError(f"{option} {item!r}: expected NAME=OTHER, e.g. {option} beta=alpha")
        out[name.strip()] = target.strip()
    return out


_CACHE: dict = {}


def tie_law(law, ties: Mapping[str, str]):
    """The law with each ``tied`` parameter equal to its ``target`` (see :meth:`Law.tie`)."""
    if not ties:
        return law
    fixed = law.fixed_values
    names = law.param_names
    for tied, target in ties.items():
        for n in (tied, target):
            if n not in names:
                raise ValueError(f"tie {tied}={target}: law {law.name!r} has no parameter {n!r}; its parameters are "
                                 f"{', '.join(names)}")
        if tied == target:
            raise ValueError(f"tie {tied}={target}: a parameter cannot be tied to itself")
        if tied in fixed or target in fixed:
            raise ValueError(f"tie {tied}={target}: {tied if tied in fixed else target} is fixed; tie free parameters")
        if target in ties:
            raise ValueError(f"tie {tied}={target}: {target} is itself tied; tie to a free parameter")
        if law.param(tied).log != law.param(target).log:
            raise ValueError(f"tie {tied}={target}: one is a positive scale and the other an exponent; tie like to like")
    key = (law, tuple(sorted(ties.items())))
    if key in _CACHE:
        return _CACHE[key]
    pairs = tuple(sorted(ties.items()))
    wrap = (lambda f: None if f is None else Tied(f, pairs))
    centering = tuple((s, ties.get(e, e), i, sign) for s, e, i, sign in law.centering if s not in ties)
    text = ", ".join(f"{a} = {b}" for a, b in pairs)
    out = dataclasses.replace(
        law, name=f"{law.name}[{','.join(f'{a}={b}' for a, b in pairs)}]", formula=f"{law.formula}, with {text}",
        params=tuple(p for p in law.params if p.name not in ties), log_loss_fn=wrap(law.log_loss_fn),
        optimum=wrap(law.optimum), compute_for_loss=wrap(law.compute_for_loss), centering=centering,
        starts_override=None, linear=tuple(n for n in law.linear if n not in ties), ties=law.ties + pairs)
    _CACHE[key] = out
    return out

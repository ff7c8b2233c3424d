"""A user law for the command line: ``bayes-scaling fit runs.csv --law examples/custom_law.py:model_size``.

The factory takes no arguments and returns a Law; the log of the predicted loss of one run is the one function
a law declares (fits, posteriors, forecasts and reports all use it).
"""

import jax.numpy as jnp
import numpyro.distributions as dist

from bayes_scaling import Law, Param


def log_loss(p, x):
    """log L(N) = log(E + A / N^alpha)."""
    return jnp.logaddexp(jnp.log(p["E"]), jnp.log(p["A"]) - p["alpha"] * jnp.log(x["N"]))


def model_size() -> Law:
    return Law(name="model_size", formula="L(N) = E + A / N^alpha", inputs=("N",),
               params=(Param("E", dist.LogNormal(0.5, 0.5), log=True, starts=(-0.5, 0.0, 0.5), doc="irreducible loss"),
                       Param("A", dist.LogNormal(5, 5), log=True, starts=(0.0, 5.0, 10.0), doc="model-size term scale"),
                       Param("alpha", dist.LogNormal(-1, 1), log=False, starts=(0.1, 0.3, 0.6), doc="model-size exponent")),
               log_loss_fn=log_loss, reference="README example")

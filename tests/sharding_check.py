"""Run in a fresh process with 4 forced host devices (see test_batch.py::test_sharded_equals_unsharded)."""
import os
import sys


def main():
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    import jax

    jax.config.update("jax_enable_x64", True)
    import json

    import numpy as np
    import pandas as pd

    from bayes_scaling import load_runs
    from bayes_scaling.batch import bootstrap_point, fit_point_batch
    from bayes_scaling.batch_posterior import sample_posterior_batch

    assert len(jax.devices()) == 4, jax.devices()
    rng = np.random.default_rng(0)
    rows = []
    for f in range(6):  # 6 families over 4 devices: padding exercised
        C = np.geomspace(1e18, 1e21, 15)
        y = (1.5 + 0.1 * f + 300 * C ** -0.1) * np.exp(0.002 * rng.standard_normal(15))
        rows.append(pd.DataFrame({"C": C, "loss": y, "fam": f"f{f}"}))
    runs = load_runs(pd.concat(rows, ignore_index=True), family="fam")
    sharded = fit_point_batch("power_law_floor", runs)
    single = fit_point_batch("power_law_floor", runs, devices=1)
    boot_s = bootstrap_point("power_law_floor", runs, num_resamples=10, seed=1)
    boot_1 = bootstrap_point("power_law_floor", runs, num_resamples=10, seed=1, devices=1)
    # posteriors: 3 families over 2 devices (padding exercised); each family keeps its own keys and starts
    three = runs.select(np.isin(runs.family, ["f0", "f1", "f2"]))
    kw = dict(num_warmup=150, num_samples=100, num_chains=2, seed=3)
    post_s = sample_posterior_batch("power_law_floor", three, devices=2, **kw)
    post_1 = sample_posterior_batch("power_law_floor", three, devices=1, **kw)
    # one posterior's chains over the devices: 3 chains over 2 devices (padded) give the one-device draws
    from bayes_scaling import sample_posterior

    one = dict(num_warmup=150, num_samples=100, num_chains=3, seed=5)
    chains_s = sample_posterior("power_law_floor", three.select(three.family == "f0"), devices=2, **one)
    chains_1 = sample_posterior("power_law_floor", three.select(three.family == "f0"), devices=1, **one)
    out = {
        "chain_devices": [chains_s.settings["devices"], chains_1.settings["devices"]],
        "chains_max_abs": float(max(np.max(np.abs(chains_s.draws[k] - chains_1.draws[k])) for k in chains_1.draws)),
        "post_families": sorted(post_s.posteriors),
        "post_max_abs": float(max(np.max(np.abs(post_s.posteriors[f].draws[k] - post_1.posteriors[f].draws[k]))
                                  for f in post_1.posteriors for k in post_1.posteriors[f].draws)),
        "max_rel_param": max(abs(sharded.fits[f].params[k] / single.fits[f].params[k] - 1) for f in single.fits for k in single.fits[f].params),
        "max_rel_objective": max(abs(sharded.fits[f].objective / single.fits[f].objective - 1) for f in single.fits),
        "boot_max_rel": float(max(np.max(np.abs(boot_s["params"][k] / boot_1["params"][k] - 1)) for k in boot_1["params"])),
        "families": sorted(sharded.fits),
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

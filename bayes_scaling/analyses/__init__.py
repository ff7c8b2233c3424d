"""Analyses with their own small models, built on the core (data, laws, model, fitting, sampling, posterior):

* :mod:`~bayes_scaling.analyses.isoflop`: IsoFLOP parabolas (Approach 2);
* :mod:`~bayes_scaling.analyses.envelope`: the lower envelope of loss against compute (Approach 1);
* :mod:`~bayes_scaling.analyses.batch_size`: critical batch size from steps-to-target sweeps;
* :mod:`~bayes_scaling.analyses.hyperparams`: power laws of optimal hyperparameters (batch size, learning rate);
* :mod:`~bayes_scaling.analyses.hierarchical`: families pooled in one hierarchical posterior.

Each result answers ``health()`` (:class:`~bayes_scaling.diagnostics.Health`) and ``diagnostics()``. The functions a
user calls are exported by the package itself (``bayes_scaling.analyses.isoflop``, ...); this package exports none, so that
no module is hidden behind a function of the same name.
"""

"""`nextbest evaluate`: off-policy evaluation of logged decisions (DSJSON).

"Would this policy, this learner or this reward be better?" answered from yesterday's log
instead of from production: the log holds, for every decision, the probability with which
the logged action was chosen, which is what importance weighting needs.

- ``reader``: DSJSON files → compact numpy arrays (and the lines VW learns from, on demand);
- ``reward_spec``: an alternative reward, recomputed from the logged raw signals;
- ``specs`` and ``targets``: the policies to estimate (``logged``, ``uniform``,
  ``constant:…``, ``baseline``, ``vw:…``, ``model:…``), parsed, and as per-action
  probabilities on each event;
- ``learners``: VW on the log: candidates trained progressively, saved models, the
  cross-fitted reward model of the doubly robust estimator, feature weights;
- ``estimators``: IPS, SNIPS and DR with 95% intervals, and the effective sample size;
- ``evaluation``: the whole run, from log to results;
- ``report`` and ``command``: the table, ``--json``, ``--plot`` and the flags.

Like ``nextbest.simulate``, it is a client of the domain and nothing imports it.
"""

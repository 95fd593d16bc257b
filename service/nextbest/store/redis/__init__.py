"""Redis mode: the shared backbone of several serving replicas and one learner per policy.

See ``keys`` for what lives where, ``store`` for the shared join (the EventStore port on
Redis), ``learner`` for learning from joined events, ``models`` for model snapshots.
"""

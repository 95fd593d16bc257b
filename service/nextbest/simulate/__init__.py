"""`nextbest simulate`: a simulated world that drives the real service and shows it learn.

A scenario (customer support, or the classic two-user news tutorial) hides a ground truth of
how well each action works in each situation. The simulator plays a stream of situations
against a nextbest service over gRPC — an embedded one, or any running one — sends rewards
back with a delay, and compares what nextbest earned with baselines computed in-process on
the same stream: random, the best fixed action, a hand-written rule set, and the oracle.

The domain (``nextbest.policy``) does not import this package; it is a client of the service.
"""

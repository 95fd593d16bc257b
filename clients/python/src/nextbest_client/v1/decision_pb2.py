"""``nextbest_proto.v1.decision_pb2``, re-exported (see :mod:`nextbest_client.v1`)."""

from nextbest_proto.v1.decision_pb2 import *  # noqa: F403

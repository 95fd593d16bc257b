"""``nextbest_proto.v1.decision_pb2_grpc``, re-exported (see :mod:`nextbest_client.v1`)."""

from nextbest_proto.v1.decision_pb2_grpc import *  # noqa: F403

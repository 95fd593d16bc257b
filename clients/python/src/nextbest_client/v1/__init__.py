"""The generated gRPC stubs, under the name this SDK has always given them.

They are generated into, and installed with, the ``nextbest-proto`` distribution
(:mod:`nextbest_proto.v1`), which the server imports too; each module here re-exports one of
them, so ``from nextbest_client.v1 import decision_pb2`` keeps working and its classes are the
very classes of ``nextbest_proto.v1.decision_pb2``.
"""

"""The nextbest wire contract for Python: what the server and the SDK share.

- :mod:`nextbest_proto.v1`: the gRPC stubs generated from ``proto/nextbest/v1`` (the SDK
  re-exports them as ``nextbest_client.v1``).
- :mod:`nextbest_proto.values`: the one codec of ``nextbest.v1.Value``, both ways.
- :mod:`nextbest_proto.records`: the status names and their wire enums, and the eligible
  action as ``Explain`` carries it.
"""

__version__ = "0.1.0"

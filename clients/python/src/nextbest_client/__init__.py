"""Client for nextbest: the generated gRPC stubs live in :mod:`nextbest_client.v1`."""

__version__ = "0.1.0"

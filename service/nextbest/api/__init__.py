"""Transports: gRPC servicers and the HTTP metrics endpoint. They translate, nothing more."""

# syntax=docker/dockerfile:1
# nextbest, embedded mode: one process holding its model, joins and data dir.
#   docker build -t nextbest .
#   docker run -p 50051:50051 -p 9464:9464 -v nextbest-data:/var/lib/nextbest \
#     -v $PWD/auth.yaml:/etc/nextbest/auth/tokens.yaml:ro \
#     -e NEXTBEST_AUTH_FILE=/etc/nextbest/auth/tokens.yaml nextbest
# On 0.0.0.0 nextbest refuses to start without an auth file (NEXTBEST_AUTH_FILE; make entries
# with `nextbest token new`), mTLS (NEXTBEST_TLS_CLIENT_CA), or NEXTBEST_ALLOW_UNAUTHENTICATED=true.
# Both stages run scripts/build-wheels.sh, which tests/deploy/test_image.py runs the same way
# (this machine's CI has no Docker engine): keep the build steps in that script.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proto/python/ proto/python/
COPY clients/python/ clients/python/
COPY service/ service/
COPY scripts/build-wheels.sh scripts/
RUN bash scripts/build-wheels.sh build /wheels

FROM ${PYTHON_IMAGE}
ENV PIP_NO_CACHE_DIR=1
# The wheels and the script are mounted, not copied: no layer keeps them, and no build tool
# (compiler, headers, git) reaches this stage.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    --mount=type=bind,from=build,source=/src/scripts,target=/build \
    bash /build/build-wheels.sh install /wheels /opt/nextbest
RUN useradd --system --user-group --uid 10001 --home-dir /var/lib/nextbest --no-create-home \
      --shell /usr/sbin/nologin nextbest \
    && mkdir -p /var/lib/nextbest /etc/nextbest \
    && chown nextbest:nextbest /var/lib/nextbest
# The example policy; mount yours over it (Compose: ./policies, Kubernetes: a ConfigMap).
COPY examples/support.yaml /etc/nextbest/policies.yaml
ENV PATH=/opt/nextbest/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NEXTBEST_CONFIG=/etc/nextbest/policies.yaml \
    NEXTBEST_ADDRESS=0.0.0.0:50051 \
    NEXTBEST_METRICS_ADDRESS=0.0.0.0:9464 \
    NEXTBEST_DATA_DIR=/var/lib/nextbest \
    NEXTBEST_FSYNC=interval \
    NEXTBEST_LOG_LEVEL=info
# Journal, decision logs, model checkpoints: what to back up. One process owns it (locked).
VOLUME ["/var/lib/nextbest"]
USER 10001:10001
WORKDIR /var/lib/nextbest
# gRPC (DecisionService, grpc.health.v1, reflection) and Prometheus /metrics
EXPOSE 50051 9464
# grpc.health.v1 on NEXTBEST_ADDRESS (a wildcard host is asked on 127.0.0.1)
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["nextbest", "health", "--timeout", "3"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["nextbest"]
CMD ["serve"]

# The Suandian operator image: `suandian run` on a slim Python, as a non-root user, with
# only the runtime dependencies of the package (no test tools, no compilers).
#
#   docker build -t ghcr.io/suandian/suandian:0.1.0 .
#
# The Helm chart (helm/suandian) runs it with a read-only root filesystem, /tmp as an
# emptyDir, all capabilities dropped and the user below (10001).

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a wheel of the package alone --------------------------------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN python -m build --wheel --outdir /wheels .

# --- runtime ----------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="suandian" \
      org.opencontainers.image.description="Kubernetes operator that makes compute follow green power" \
      org.opencontainers.image.source="https://suandian.io" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib

COPY --from=build /wheels/ /wheels/
# the [openadr] extra: the VEN (openleadr, imported only when a VTN is configured)
RUN pip install "$(ls /wheels/suandian-*.whl)[openadr]" \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 suandian \
    && useradd --system --uid 10001 --gid suandian --no-create-home \
               --home-dir /nonexistent --shell /usr/sbin/nologin suandian

USER 10001:10001
# 8080: kopf liveness (/healthz), 8081: /metrics, 9443: the pod-gating webhook (HTTPS).
EXPOSE 8080 8081 9443
ENTRYPOINT ["suandian"]
CMD ["run", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz"]

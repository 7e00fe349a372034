# driftwire: slim, non-root, with numba's compiled kernels baked into the image.
# BASE_IMAGE: any image with the layout of python:3.11-slim (python and pip in /usr/local/bin,
# useradd); deploy/image/verify.sh builds one from Debian's packages and passes it here.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # numba keeps compiled kernels here; `driftwire warm-up` fills it at build time so a
    # container starts in seconds instead of compiling for about a minute.
    NUMBA_CACHE_DIR=/var/cache/driftwire/numba

WORKDIR /build
COPY pyproject.toml README.md ./
COPY detectors detectors
COPY stream stream
COPY schemas schemas
# Leave /build before deleting it: numba asks for the working directory when it compiles.
RUN pip install . \
    && cd / && rm -rf /build \
    && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin driftwire \
    && mkdir -p "$NUMBA_CACHE_DIR" \
    && driftwire warm-up \
    && chown -R 10001:10001 /var/cache/driftwire

WORKDIR /
USER 10001:10001
EXPOSE 9108
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=2)"
ENTRYPOINT ["driftwire"]
CMD ["run"]

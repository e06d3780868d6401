# core: one image for the gateway, the scheduler and the admin API (docs/deploy.md).
# Build:  docker build --build-arg PLUGINS="core-plugin-postgres core-plugin-nats" -t core .
# Run:    docker run core start gateway   (or: start scheduler, start admin)

ARG PYTHON=3.11

# --- build: wheels of core and the chosen plugins from this checkout -------------------------
FROM python:${PYTHON}-slim AS build
ARG PLUGINS="core-plugin-postgres core-plugin-nats"
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --wheel-dir /wheels . \
    && for plugin in ${PLUGINS}; do pip wheel --no-cache-dir --wheel-dir /wheels "plugins/${plugin}"; done

# --- runtime: the wheels only, run as an unprivileged user ----------------------------------
FROM python:${PYTHON}-slim AS runtime
RUN useradd --system --uid 10001 --home-dir /srv/core --create-home core
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels /wheels/*.whl && rm -rf /wheels
USER core
WORKDIR /srv/core
ENV CORE_GATEWAY_HOST=0.0.0.0 \
    CORE_SCHEDULER_HOST=0.0.0.0
EXPOSE 9090 9091 9095
# The gateway answers on 9090, a lone scheduler on 9095, the admin API on 9091; set HEALTH_URL
# to the one this container runs (compose.yaml sets each service's own check).
ENV HEALTH_URL=http://127.0.0.1:9090/_health
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTH_URL'], timeout=2)"]
ENTRYPOINT ["core"]
CMD ["start", "gateway"]

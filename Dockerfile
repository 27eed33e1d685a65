# syntax=docker/dockerfile:1
# The `accord` image: one binary for every command (operator, serve, render, connlist, …) and
# the dashboard it serves. The runtime image holds only the binary, the built dashboard and CA
# roots. The bundled demo is embedded in the binary.
#
#   docker build -t accord .
#   docker run --rm -p 8080:8080 accord serve --listen 0.0.0.0:8080      # the demo dashboard
#
# Build caches (cargo registry, target directory, the pinned wasm tools under ~/.cache/accord)
# live in BuildKit cache mounts, so a source edit rebuilds only what changed.

FROM rust:1.95-bookworm AS build
# npm installs the pinned binaryen (wasm-opt) that scripts/build-frontend.sh uses; brotli and
# zopfli precompress the dashboard's files.
RUN apt-get update \
    && apt-get install -y --no-install-recommends npm brotli zopfli \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/root/.cache/accord \
    --mount=type=cache,target=/src/target \
    scripts/build-frontend.sh \
    && cargo build --release --locked -p accord-server \
    && mkdir -p /out/bin /out/share/accord \
    && cp target/release/accord /out/bin/accord \
    && strip /out/bin/accord \
    && ln -s accord /out/bin/kubectl-accord \
    && cp -r target/site /out/share/accord/site

FROM gcr.io/distroless/cc-debian12:nonroot
# accord, and kubectl-accord (a symlink to it) for `kubectl accord …` in images used as toolboxes.
COPY --from=build /out/bin/ /usr/local/bin/
# `accord serve` looks for the dashboard in <binary dir>/../share/accord/site.
COPY --from=build /out/share/accord /usr/local/share/accord
USER nonroot:nonroot
# 8080: `accord serve` (pass --listen 0.0.0.0:8080) or the operator's metrics; 9443: webhooks.
EXPOSE 8080 9443
ENTRYPOINT ["/usr/local/bin/accord"]
CMD ["--help"]

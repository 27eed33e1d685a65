# syntax=docker/dockerfile:1
# Multi-stage build of the `accord` binary; the runtime image holds only the binary and CA roots.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY crates/policy/Cargo.toml crates/policy/Cargo.toml
COPY server/Cargo.toml server/Cargo.toml
COPY tests/Cargo.toml tests/Cargo.toml
RUN mkdir -p crates/policy/src crates/policy/benches server/src tests/src \
    && echo '' > crates/policy/src/lib.rs \
    && for b in render evaluate; do echo 'fn main() {}' > crates/policy/benches/$b.rs; done \
    && echo 'fn main() {}' > server/src/main.rs \
    && echo '' > tests/src/lib.rs \
    && cargo build --release --locked -p accord-server \
    && rm -rf crates server tests
COPY . .
# Make sure cargo sees the real sources as newer than the placeholder build.
RUN touch crates/policy/src/lib.rs server/src/main.rs \
    && cargo build --release --locked -p accord-server \
    && strip target/release/accord

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/accord /usr/local/bin/accord
COPY --from=build /src/assets/demo /usr/share/accord/demo
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/accord"]
CMD ["--help"]

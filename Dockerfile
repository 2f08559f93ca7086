# vmp3's container image: one image for every role (`vmp3 serve --roles ...`) and for
# `vmp3 convert`. Build: `docker build -t vmp3 .` (BuildKit). Run the embedded single-container
# mode (every role, local files + SQLite under /data):
#   docker run -p 8080:8080 -v vmp3-data:/data vmp3
# Stages:
#   build     debian:bookworm with the -dev packages; compiles the `vmp3` executable only
#   runtime   debian:bookworm-slim with the runtime libraries and the binary (the default target)
#   prebuilt  the same runtime with a binary built outside Docker on Debian 12 (build/vmp3):
#             `docker build --target prebuilt .`; the tests use it to skip a second compile
# The runtime runs as uid/gid 10001 and works with a read-only root filesystem (`--read-only`):
# only /data (the volume) and /tmp are written.

ARG DEBIAN_SUITE=bookworm

FROM debian:${DEBIAN_SUITE} AS build
# Only what compiling the executable needs (scripts/install-deps lists the test tools too).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config \
      libavformat-dev libavcodec-dev libswresample-dev libavutil-dev libmp3lame-dev \
      libboost1.81-dev libboost-url1.81-dev \
      librabbitmq-dev libhiredis-dev libcurl4-openssl-dev libssl-dev libsodium-dev \
      libsqlite3-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev libexpected-dev \
      libpugixml-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY src src
COPY app app
COPY fuzz/CMakeLists.txt fuzz/CMakeLists.txt
COPY web web
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DVMP3_BUILD_TESTS=OFF \
      -DVMP3_BUILD_BENCH=OFF \
 && cmake --build build --target vmp3_cli \
 && strip build/vmp3 \
 && build/vmp3 --version

FROM debian:${DEBIAN_SUITE}-slim AS runtime-base
# The shared libraries the executable links (their own dependencies come with them), CA
# certificates for HTTPS to S3, and curl for the health check.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libavformat59 libavcodec59 libswresample4 libavutil57 libmp3lame0 \
      libboost-url1.81.0 librabbitmq4 libhiredis0.14 libcurl4 libssl3 libsodium23 \
      libsqlite3-0 libspdlog1.10 libfmt9 libpugixml1v5 \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 vmp3 \
 && useradd --system --uid 10001 --gid vmp3 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin vmp3 \
 && mkdir -p /data && chown vmp3:vmp3 /data && chmod 0750 /data

ARG VMP3_VERSION=0.1.0
ARG VMP3_REVISION=unknown
ARG VMP3_SOURCE=https://github.com/vmp3/vmp3
LABEL org.opencontainers.image.title="vmp3" \
      org.opencontainers.image.description="Turns uploaded videos into MP3s: every role of the service and the vmp3 convert command" \
      org.opencontainers.image.version="${VMP3_VERSION}" \
      org.opencontainers.image.revision="${VMP3_REVISION}" \
      org.opencontainers.image.source="${VMP3_SOURCE}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/debian:${DEBIAN_SUITE}-slim"

# Every flag has a VMP3_* variable (vmp3 serve --help). In a container the server listens on all
# interfaces and keeps its embedded state (keys, SQLite, files) on the volume.
ENV VMP3_LISTEN=0.0.0.0:8080 \
    VMP3_DATA_DIR=/data \
    TMPDIR=/tmp
VOLUME ["/data"]
WORKDIR /data
EXPOSE 8080
USER 10001:10001
# Liveness of whatever role runs, on the port VMP3_LISTEN names.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${VMP3_LISTEN##*:}/healthz" || exit 1
# SIGTERM drains in-flight requests (VMP3_DRAIN seconds) and hands unfinished jobs back.
STOPSIGNAL SIGTERM
ENTRYPOINT ["vmp3"]
CMD ["serve"]

FROM runtime-base AS prebuilt
COPY build/vmp3 /usr/local/bin/vmp3

FROM runtime-base AS runtime
COPY --from=build /src/build/vmp3 /usr/local/bin/vmp3

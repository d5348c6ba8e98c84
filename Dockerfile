# driftwatch image: Debian 12 slim, two stages.
#   docker build -t driftwatch:0.1.0 .
#   docker run --rm driftwatch:0.1.0 --version
#
# build:   the Debian build dependencies (scripts/deps.sh --build-only), the binary alone (no
#          tests), the release build of scripts/pgo.sh (Release, optimized with a profile of its
#          hot path: built, run over gen's traffic with `driftwatch replay`, built again; no
#          service needed), installed with `cmake --install` into /opt/driftwatch, stripped.
# runtime: the shared libraries the binary loads and nothing else (no compiler, no shell
#          tools added), a non-root user, the installed tree under /usr/local.
# The binary is PID 1 (exec-form ENTRYPOINT, no shell in between), so SIGTERM from Kubernetes
# reaches it: it checkpoints, leaves the consumer group and exits (docs/operations.md). It starts
# no child processes, so PID 1 has no zombies to reap and needs no init.
# tests/integration/test_packaging.py checks this file against a real install: every library
# `ldd` lists for the installed binary comes from a package named on the runtime apt-get line.

FROM debian:12-slim AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY . .
RUN bash scripts/pgo.sh /tmp/build \
    && cmake --install /tmp/build --prefix /opt/driftwatch --strip \
    && /opt/driftwatch/bin/driftwatch --version

FROM debian:12-slim
# The libraries driftwatch links (librdkafka1 ... libcsv3), then the ones they load in turn,
# each named so that the ldd check holds package by package; ca-certificates for TLS to Kafka,
# webhooks, Slack and PagerDuty; libmimalloc2.0 and libtcmalloc-minimal4 (and the libstdc++6
# it loads) for an operator who sets LD_PRELOAD=libmimalloc.so.2 or libtcmalloc_minimal.so.4
# (docs/scaling.md, "Another allocator").
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libc6 librdkafka1 libjansson4 libhiredis0.14 libcurl4 libmicrohttpd12 libyaml-0-2 libssl3 zlib1g libcsv3 \
        liblz4-1 libzstd1 libsasl2-2 libnghttp2-14 libidn2-0 librtmp1 libssh2-1 libpsl5 libgssapi-krb5-2 libldap-2.5-0 libbrotli1 libgnutls30 libunistring2 libhogweed6 libnettle8 libgmp10 libkrb5-3 libk5crypto3 libcom-err2 libkrb5support0 libp11-kit0 libtasn1-6 libkeyutils1 libffi8 \
        ca-certificates libmimalloc2.0 libtcmalloc-minimal4 libstdc++6 libgcc-s1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 driftwatch \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin driftwatch
COPY --from=build /opt/driftwatch/ /usr/local/
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/driftwatch"]
CMD ["run", "-c", "/etc/driftwatch/driftwatch.yaml"]

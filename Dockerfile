# syntax=docker/dockerfile:1
# Build a static binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/hybridns ./cmd/hybridns

# No file capability on the binary: builders drop it (BuildKit exporters,
# kaniko), Kubernetes ignores it with allowPrivilegeEscalation: false, and
# with the capability dropped from the bounding set (cap_drop: ALL) the
# kernel would refuse to even start a binary carrying it. Port 53 is bound
# as non-root through net.ipv4.ip_unprivileged_port_start (Docker >= 20.10
# sets it to 0 in every container; Kubernetes: the pod's
# securityContext.sysctls, see examples/kubernetes/hybridns.yaml). See the
# README, "Container".
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/hybridns /usr/bin/hybridns
COPY examples/container.yaml /etc/hybridns/hybridns.yaml
# Numeric so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 53/udp 53/tcp 8053/tcp
# No shell or curl in distroless: the binary asks its own /healthz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/bin/hybridns", "health", "--quiet"]
ENTRYPOINT ["/usr/bin/hybridns"]
CMD ["serve", "--config", "/etc/hybridns/hybridns.yaml"]

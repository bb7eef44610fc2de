# syntax=docker/dockerfile:1
# Build a static binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/hybridns ./cmd/hybridns

# Give the binary the one capability it needs to bind port 53 as non-root.
FROM debian:bookworm-slim AS caps
RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/hybridns /hybridns
RUN setcap cap_net_bind_service=+ep /hybridns

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=caps /hybridns /usr/bin/hybridns
# Numeric so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 53 53/udp 8053
ENTRYPOINT ["/usr/bin/hybridns"]
CMD ["serve", "--config", "/etc/hybridns/hybridns.yaml"]

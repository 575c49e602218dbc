# pollrelay's image: a static binary on distroless, run as "nonroot".
# Without a container engine the same image is built from the binary by
# deploy/cmd/pollrelay-image (see deploy/README.md); its test checks that
# the paths, user and port below are the ones it writes.
#
#   docker build --build-arg VERSION=v1.2.3 -t pollrelay:v1.2.3 .

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/pollrelay/pollrelay/internal/version.stamped=${VERSION}" \
      -o /out/usr/local/bin/pollrelay . \
 && mkdir -p /out/var/lib/pollrelay /out/etc/pollrelay

# distroless/static holds CA certificates, tzdata and a passwd entry for
# nonroot (65532); nothing else, not even a shell.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="pollrelay" \
      org.opencontainers.image.description="Webhooks for APIs that have none: polls upstream APIs and delivers each transition as a signed webhook." \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/usr/local/bin/pollrelay /usr/local/bin/pollrelay
COPY --from=build --chown=65532:65532 --chmod=700 /out/var/lib/pollrelay /var/lib/pollrelay
USER 65532:65532
WORKDIR /var/lib/pollrelay
VOLUME /var/lib/pollrelay
EXPOSE 8787
ENTRYPOINT ["/usr/local/bin/pollrelay"]
CMD ["run", "--config", "/etc/pollrelay/config.yaml"]

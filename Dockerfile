# CertDesk worker and starter. One image, two entry points:
#   docker run certdesk worker [-role signer]
#   docker run certdesk starter
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# cgo stays on: the signer talks PKCS#11 (crypto11) to an HSM.
RUN go build -trimpath -o /out/worker ./worker && go build -trimpath -o /out/starter ./starter

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 certdesk
COPY --from=build /out/worker /out/starter /usr/local/bin/
USER certdesk
ENTRYPOINT []
CMD ["starter"]

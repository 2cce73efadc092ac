# syntax=docker/dockerfile:1
# Multi-stage: build a static coopcast binary, ship it alone on a minimal,
# non-root base. Build: docker build -t coopcast .
# Run:   docker run -p 8080:8080 -p 50000-50100:50000-50100/udp coopcast tracker --listen :8080

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first, so code edits do not re-download modules.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO off: a static binary that runs on a scratch-like image.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/coopcast ./cmd/coopcast

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/coopcast /usr/local/bin/coopcast
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/coopcast"]
CMD ["tracker", "--listen", ":8080"]

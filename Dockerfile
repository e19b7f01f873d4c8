# EnrollQ binaries (api, queue-ws, enrollctl, loadgen) for docker-compose.yml.
# Local development and CI do not use Docker: see scripts/services.sh.

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN mkdir -p /out web && go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/...

FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /app
COPY --from=build /out/ /app/
COPY --from=build /src/web/ /app/web/
COPY --from=build /src/testdata/fixtures/ /app/testdata/fixtures/
ENV ENROLLQ_WEB_DIR=/app/web
USER nonroot:nonroot
# docker-compose.yml picks the binary (api, queue-ws, enrollctl) per service.
ENTRYPOINT ["/app/api"]

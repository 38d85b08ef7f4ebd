# Restored. `make demo` and `make test` are the two commands a newcomer runs.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:/usr/local/go/bin:$(PATH)
export GOFLAGS := -buildvcs=false

# Pinned code generators and linters (installed with `go install`).
BUF_VERSION              := v1.75.0
PROTOC_GEN_GO_VERSION    := v1.36.12
PROTOC_GEN_GO_GRPC       := v1.5.1
GRPC_GATEWAY_VERSION     := v2.33.0
STATICCHECK_VERSION      := v0.8.2
# govmomi's vCenter simulator for the VMware driver's tests (the proxy's
# @latest is a 2018 release: ask for the version). It is installed from the
# first module proxy of the environment (`go env GOPROXY`), never from a
# registry address written here.
VCSIM_VERSION            := v0.46.3
comma                    := ,
GOPROXY_FIRST            := $(firstword $(subst |, ,$(subst $(comma), ,$(shell go env GOPROXY))))
TOOLS := .tools/bin

GENERATED := api/gen internal/gen api/openapi

.PHONY: build-windows all deps libvirt test-image build web openapi-client tools generate check-generated check-proto-compat proto-baseline lint test fuzz demo bench bench-raft bench-scale bench-agents bench-restore bench-verify bench-snapshot bench-export clean

all: build

# Debian packages the tests and the demo need (apt-get, only what is missing).
deps:
	./scripts/install-deps.sh

# libvirtd and virtlogd, started when not running (never the default NAT network).
libvirt: deps
	./scripts/start-libvirt.sh

# The bootable test image (Debian kernel, busybox, qemu-ga), built once and cached.
test-image: deps
	images/build-test-image.sh .cache/test-image

# noVNC for the browser console, from npm (web/package-lock.json pins it);
# installed into web/node_modules, never committed.
NOVNC := web/node_modules/@novnc/novnc/core/rfb.js
web: $(NOVNC)
$(NOVNC): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

# The partner portal's client tool chain for e2e/openapi_client_test.go
# (openapi-typescript, openapi-fetch, tsc), from npm; never committed.
OPENAPI_CLIENT := e2e/openapi-client/node_modules/.bin/openapi-typescript
openapi-client: $(OPENAPI_CLIENT)
$(OPENAPI_CLIENT): e2e/openapi-client/package.json e2e/openapi-client/package-lock.json
	cd e2e/openapi-client && npm ci --no-audit --no-fund
	@touch $@

build: web
	@mkdir -p bin
	go build -o bin/ ./cmd/restored ./cmd/hypervisor-agent ./cmd/restorectl

# The Hyper-V agent runs on the Windows host (docs/hyperv.md): the agent and
# the CLI must build for Windows, and the packages it runs must vet there.
build-windows:
	@mkdir -p bin/windows
	GOOS=windows GOARCH=amd64 go build -o bin/windows/ ./cmd/hypervisor-agent ./cmd/restorectl
	GOOS=windows GOARCH=amd64 go vet ./internal/agent/ ./internal/hyperv/ ./internal/vhdx/ ./internal/nbd/ ./internal/hypervisor/

$(TOOLS)/buf:
	GOBIN=$(CURDIR)/$(TOOLS) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(CURDIR)/$(TOOLS) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(CURDIR)/$(TOOLS) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC)
$(TOOLS)/protoc-gen-grpc-gateway:
	GOBIN=$(CURDIR)/$(TOOLS) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
$(TOOLS)/protoc-gen-openapiv2:
	GOBIN=$(CURDIR)/$(TOOLS) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
$(TOOLS)/staticcheck:
	GOBIN=$(CURDIR)/$(TOOLS) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
$(TOOLS)/vcsim:
	GOBIN=$(CURDIR)/$(TOOLS) GOPROXY=$(GOPROXY_FIRST) go install github.com/vmware/govmomi/vcsim@$(VCSIM_VERSION)

tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/protoc-gen-grpc-gateway $(TOOLS)/protoc-gen-openapiv2 $(TOOLS)/staticcheck $(TOOLS)/vcsim

# Regenerate Go, grpc-gateway and OpenAPI (v2, and v3 from it) from
# api/proto and internal/proto.
generate: tools
	buf lint
	rm -rf $(GENERATED)
	buf generate
	go run ./api/openapi3gen api/openapi/restore.swagger.json api/openapi/restore.openapi3.json

# Fails when a proto change breaks compatibility with the recorded images in
# proto-baseline/ (public API: FILE rules; raft log and snapshots: WIRE), or
# when those images are not the current protos'.
check-proto-compat: tools
	./scripts/check-proto-compat.sh

# Checks compatibility, then records the current protos as the baseline
# (ACCEPT_BREAKING=1 records a deliberate break).
proto-baseline: tools
	./scripts/check-proto-compat.sh --record

# Fails when the committed generated code differs from what the protos produce.
check-generated: generate check-proto-compat
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		echo "generated code is stale: run 'make generate' and commit the result:"; \
		git status --porcelain -- $(GENERATED); exit 1; \
	fi
	@echo "generated code is current"

lint: tools
	./scripts/check-tracked-files.sh
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	go vet -tags faults ./e2e
	staticcheck ./...
	staticcheck -tags faults ./e2e

# The whole test suite: generated code, lint, unit, API, cluster and e2e tests.
test: deps check-generated lint build build-windows openapi-client
	./scripts/start-libvirt.sh
	go test -count=1 -timeout 30m ./...
	# Faults that touch what every package shares (libvirtd restarted),
	# alone after the others; the test starts libvirtd again itself.
	go test -count=1 -timeout 15m -tags faults -run 'TestLibvirtd' ./e2e
	./scripts/start-libvirt.sh
	./scripts/fuzz.sh 10s

# Every fuzz target for FUZZTIME each (default 2m), with the inputs tried.
fuzz:
	./scripts/fuzz.sh $(or $(FUZZTIME),2m)

demo: deps build
	./scripts/demo.sh

# Every benchmark in turn, then one table of their figures (measure, ours,
# the baseline of the same run, ratio, target, met), dated. ONLY=raft,scale
# runs some.
bench: build
	go run ./bench/table $(if $(ONLY),--only $(ONLY))

# Raft write throughput, latency and leader failover against three servers.
bench-raft: build
	go run ./bench/raft

# The FSM, store and scheduler in one process with 10,000 simulated hosts
# and 100,000 restores in bursts: placement p50/p99, placements/s, RSS,
# snapshot size and time, against 10 hosts in the same run.
bench-scale:
	go run ./bench/scale

# 1,000 simulated agents (real gRPC clients with their own certificates) on
# 3 servers: assignment receipt p50/p99 vs 1 agent, TLS handshake, RSS.
bench-agents: build
	go run ./bench/agents

# Restore start and boot-verification times against raw libvirt (P1-P3).
bench-restore: build libvirt
	go run ./bench/restore

# VERIFY runs back to back and 4 at once: time to verdict vs time to boot +
# the settling period (RUNS=5 by default).
bench-verify: build libvirt
	go run ./bench/verify --runs $(or $(RUNS),5)

# Backup jobs against a real guest: incremental bytes read vs bytes changed
# for 1/10/50 % change (P9), and the quiesce pause (P10).
bench-snapshot: build libvirt
	go run ./bench/snapshot --runs $(or $(RUNS),5)

# EXPORT over NBD vs qemu-nbd on the same file; image download vs a local
# qemu-img convert (bench/export/main.go).
# bench-export also times virt-ls: libguestfs and a kernel for its appliance
# are installed for it (not for make test).
bench-export: build libvirt
	./scripts/install-deps.sh --bench
	go run ./bench/export --size-mib $(or $(SIZE_MIB),512) $(if $(FILES_ONLY),--files-only)

clean:
	rm -rf bin .tools

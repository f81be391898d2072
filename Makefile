# Berth. `sudo make run` starts the daemon; `sudo make test` runs every test.
GO        ?= go
PREFIX    ?= /usr/local
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/berth-runtime/berth/internal/version.Commit=$(VERSION)
BINARIES  := berthd berth-shim berth-runtime berth berth-lazyfs
GOTESTFLAGS ?=

.PHONY: kube buildx test-race test-load conformance all build build-deps install uninstall run deps test bench bench-runtime bench-cri bench-pull bench-metrics bench-stats bench-restart bench-docker bench-exec bench-scale anchors fuzz lint clean

all: build

# berth-runtime links libseccomp statically (cgo): its headers and archive come from libseccomp-dev.
build-deps:
	@pkg-config --exists libseccomp 2>/dev/null || ./test/install-deps.sh build

build: build-deps
	@mkdir -p bin
	@# nri_no_wasm: berthd runs NRI plugins as processes (connected or pre-registered),
	@# not NRI's experimental WebAssembly ones, whose runtime would add 2.6 MB.
	CGO_ENABLED=0 $(GO) build -trimpath -tags nri_no_wasm -ldflags '$(LDFLAGS)' -o bin/ ./cmd/berthd ./cmd/berth-shim ./cmd/berth ./cmd/berth-lazyfs
	@# berth-runtime links a small C constructor (oci/linux/nsenter) for exec.
	CGO_ENABLED=1 $(GO) build -trimpath -tags osusergo,netgo -ldflags '$(LDFLAGS) -linkmode external -extldflags -static' -o bin/ ./cmd/berth-runtime

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/berth $(DESTDIR)/etc/systemd/system
	install -m 0755 $(addprefix bin/,$(BINARIES)) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 deploy/berthd.service $(DESTDIR)/etc/systemd/system/berthd.service
	test -e $(DESTDIR)/etc/crictl.yaml || install -m 0644 deploy/crictl.yaml $(DESTDIR)/etc/crictl.yaml

# Leaves /etc/berth, /var/lib/berth and running containers alone.
uninstall:
	-systemctl disable --now berthd 2>/dev/null
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(BINARIES)) $(DESTDIR)/etc/systemd/system/berthd.service
	-systemctl daemon-reload 2>/dev/null

# Foreground daemon with embedded defaults (no config file needed).
run: build
	./bin/berthd --log-level info

# Debian packages the tests use (busybox-static, runc, crun, ...): quick when present.
deps:
	@./test/install-deps.sh

# Kubernetes' kubelet, API server, kubectl and etcd for test/e2e's TestKubelet,
# built from the module proxy into /var/cache/berth-kube (once: ~8 minutes).
kube:
	./test/kube/build.sh >/dev/null

# docker/buildx and Compose v5 for test/e2e's BuildKit tests, built from the
# module proxy into /var/cache/berth-buildx and berth-compose (once: ~5 minutes).
buildx:
	./test/buildx/build.sh >/dev/null

# Tests need root (namespaces, mounts, cgroups); they find the binaries in ./bin.
test: deps build kube buildx
	BERTH_BIN_DIR=$(CURDIR)/bin $(GO) test -count=1 -timeout 30m $(GOTESTFLAGS) ./...

# Unit tests (everything but the e2e and benchmark packages) under the race detector.
test-race:
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v -e /test/e2e -e /test/bench)

# 50 CRI clients against a berthd built with -race (test/e2e TestLoad).
test-load: build
	mkdir -p bin/race
	CGO_ENABLED=1 $(GO) build -race -trimpath -ldflags '-X github.com/berth-runtime/berth/internal/version.Commit=$(VERSION)' -o bin/race/ ./cmd/berthd
	cp -f bin/berth-shim bin/berth-runtime bin/race/
	@BERTH_LOAD_BIN=$(CURDIR)/bin/race $(GO) test -count=1 -timeout 15m -run '^TestLoad$$' -v ./test/e2e > bin/load.log 2>&1; rc=$$?; \
	grep -E '^(--- |ok|FAIL)|load_test.go|DATA RACE' bin/load.log; \
	[ $$rc -eq 0 ] || echo "test-load failed: the whole output is in bin/load.log"; exit $$rc

# critest, the CRI validation suite, against a berthd of its own: counts and
# the skipped specs (make test runs it too, quietly).
conformance: deps build
	@BERTH_BIN_DIR=$(CURDIR)/bin $(GO) test -count=1 -timeout 20m -run '^TestCritest$$' -v ./test/e2e > bin/conformance.log 2>&1; rc=$$?; \
	grep -E '^(--- |ok|FAIL)|critest \(|skipped:|^ +\[It\]' bin/conformance.log; \
	[ $$rc -eq 0 ] || echo "conformance failed: the whole output is in bin/conformance.log"; exit $$rc

bench: bench-runtime bench-cri bench-exec bench-pull bench-metrics bench-stats bench-restart bench-scale bench-docker

bench-runtime: build
	BERTH_BIN_DIR=$(CURDIR)/bin $(GO) run ./test/bench/runtime

# containerd 2.4, the newest release, built from the module proxy as the CRI
# benchmarks' second anchor (into /var/cache/berth-bench; once).
anchors:
	./test/bench/containerd2.sh >/dev/null

# berthd against containerd 1.6 and 2.4 through the CRI: pod start, ExecSync, memory.
bench-cri: build deps anchors
	BERTH_BIN_DIR=$(CURDIR)/bin $(GO) test -count=1 -run '^$$' -bench CRI -benchtime 1x ./test/bench/cri

# ExecSync of true beside the runtime's own exec (the floor) and its CPU time.
bench-exec: build deps anchors
	BERTH_BIN_DIR=$(CURDIR)/bin $(GO) test -count=1 -run '^$$' -bench Exec -benchtime 1x -timeout 20m ./test/bench/cri

# Pull + unpack of a 200 MB image by berthd and by containerd 1.6, cold, interleaved.
bench-pull: build deps anchors
	BERTH_BIN_DIR=$(CURDIR)/bin $(GO) test -count=1 -run '^$$' -bench Pull -benchtime 1x -timeout 30m ./test/bench/cri

# Pod start with metrics on and off, and a scrape with 100 running containers.
bench-metrics: build deps
	BERTH_BIN_DIR=$(CURDIR)/bin $(GO) test -count=1 -run '^$$' -bench Metrics -benchtime 1x -timeout 20m ./test/bench/cri

# ListContainerStats and ListPodSandboxStats with 100 running containers, berthd and containerd 1.6.
bench-stats: build deps anchors
	BERTH_BIN_DIR=$(CURDIR)/bin $(GO) test -count=1 -run '^$$' -bench Stats -benchtime 1x -timeout 20m ./test/bench/cri

# Restart to the first answered CRI call with 100 running containers, berthd and containerd 1.6.
bench-restart: build deps anchors
	BERTH_BIN_DIR=$(CURDIR)/bin $(GO) test -count=1 -run '^$$' -bench Restart -benchtime 1x -timeout 20m ./test/bench/cri

# berthd's restart, lists, stats and RSS with 10 to 1,000 running containers.
bench-scale: build deps
	BERTH_BIN_DIR=$(CURDIR)/bin $(GO) test -count=1 -run '^$$' -bench Scale -benchtime 1x -timeout 60m ./test/bench/cri

# The docker CLI against berthd's Docker API and Debian's dockerd 20.10 (installed if missing).
bench-docker: build deps
	./test/install-deps.sh docker
	BERTH_BIN_DIR=$(CURDIR)/bin $(GO) test -count=1 -run '^$$' -bench Docker -benchtime 1x -timeout 20m ./test/bench/docker

# Longer runs of the fuzz targets (their seed corpora run in `make test`).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzApply -fuzztime $(FUZZTIME) ./images/unpack
	$(GO) test -run '^$$' -fuzz FuzzHostsTOML -fuzztime $(FUZZTIME) ./images
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./internal/config
	$(GO) test -run '^$$' -fuzz FuzzFrames -fuzztime $(FUZZTIME) ./shim
	$(GO) test -run '^$$' -fuzz FuzzRequest -fuzztime $(FUZZTIME) ./shim
	$(GO) test -run '^$$' -fuzz FuzzContainerConfig -fuzztime $(FUZZTIME) ./cri
	$(GO) test -run '^$$' -fuzz FuzzCreateBody -fuzztime $(FUZZTIME) ./engine

# Also refuses tracked files over 1 MB: a built binary committed by mistake once made a
# whole session's submission too big to land.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@big=$$(git ls-files -z | xargs -0 -r stat -c '%s %n' 2>/dev/null | awk '$$1 > 1048576'); \
	if [ -n "$$big" ]; then echo "tracked files over 1 MB (build output? add to .gitignore):"; echo "$$big"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin

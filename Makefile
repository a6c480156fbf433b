# kvd: build, demo, test. `make demo` and `make test` work on a fresh Debian 12 machine:
# both first install the Debian packages they need (as root, or through sudo).

SWIFT        ?= swift
APT_PACKAGES := libmicrohttpd-dev libhiredis-dev libinih-dev libsystemd-dev zlib1g-dev time \
                pkg-config redis-server redis-tools wrk curl iproute2 python3
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RELEASE_BIN  := .build/release

.PHONY: all deps build release demo test bench bench-kvload clean

all: build

# Installs only what is missing, so a second run costs a dpkg query.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		$(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing; \
	fi
	@# The distribution's redis-server service is not ours: tests and the demo run private ones.

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

demo: release
	./scripts/demo.sh $(RELEASE_BIN)

test: deps
	$(SWIFT) build
	$(SWIFT) test

# Each script prints its own table: ratios against a reference measured in the same run.
bench: release
	./bench/kvd-bench.sh $(RELEASE_BIN)/kvd
	./bench/kvbench-vs-wrk.sh $(RELEASE_BIN)
	./bench/kvload-bench.sh $(RELEASE_BIN)

# kvload vs redis-cli --pipe (1M rows), the seed's one-round-trip-per-row way, 10M rows with peak RSS.
bench-kvload: release
	./bench/kvload-bench.sh $(RELEASE_BIN)

clean:
	rm -rf .build

# kvd: build, demo, test. `make demo` and `make test` work on a fresh Debian 12 machine:
# both first install the Debian packages they need (as root, or through sudo).

SWIFT        ?= swift
APT_PACKAGES := libmicrohttpd-dev libhiredis-dev libsystemd-dev zlib1g-dev time \
                pkg-config redis-server redis-tools redis-sentinel wrk curl iproute2 python3 systemd
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RELEASE_BIN  := .build/release

.PHONY: all deps build release demo test bench bench-kvload clean static install deb e2e

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
	@# Nor is its redis-sentinel service (port 26379, master "mymaster" on 127.0.0.1:6379): the
	@# Sentinel tests run their own sentinel, master and replica on free ports under another name.

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

demo: release
	./scripts/demo.sh $(RELEASE_BIN)

# Every test is a Swift Testing test: --disable-xctest skips XCTest's empty run (its
# "Executed 0 tests" lines before the real results); the Swift Testing count is the same.
# The suites that start Redis Clusters (6 redis-servers each) and sentinels run one test at a time,
# after the rest: in parallel with everything else they loaded 2 cores past what timing-sensitive
# tests tolerate (about 3.5 min serial, the rest about 2 min in parallel).
SERIAL_TESTS := Cluster|Sentinel

test: deps
	$(SWIFT) build
	$(SWIFT) test --disable-xctest --skip '$(SERIAL_TESTS)'
	$(SWIFT) test --disable-xctest --no-parallel --filter '$(SERIAL_TESTS)'

# Each script prints its own table: ratios against a reference measured in the same run.
bench: release
	./bench/kvd-bench.sh $(RELEASE_BIN)/kvd
	./bench/kvbench-vs-wrk.sh $(RELEASE_BIN)
	./bench/kvload-bench.sh $(RELEASE_BIN)

# kvload vs redis-cli --pipe (1M rows), the seed's one-round-trip-per-row way, 10M rows with peak RSS.
bench-kvload: release
	./bench/kvload-bench.sh $(RELEASE_BIN)

clean:
	rm -rf .build build

# --- System service: install, Debian package, end-to-end test under systemd ---------
# `make install` puts the binaries, the systemd units and /etc/kvd.conf in place (an edited
# kvd.conf is kept; the new default goes beside it as kvd.conf.new). PREFIX and DESTDIR as usual.
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/kvd
MANDIR     ?= $(PREFIX)/share/man
# Binaries built with the Swift runtime linked in: they run where no Swift toolchain is installed.
STATIC_BUILD := .build/static
STATIC_BIN   := $(STATIC_BUILD)/release
VERSION      := $(shell sed -n 's/^ *static let version = "\(.*\)"/\1/p' Sources/kvd/KVD.swift)
DEB          := kvd_$(VERSION)_amd64.deb
DEB_WORK     := build/deb

static: deps
	$(SWIFT) build -c release --static-swift-stdlib --build-path $(STATIC_BUILD)

# kvd.conf(5) is generated from config/kvd.conf, the shipped default file, so the two cannot
# drift; dated by the last commit that changed the file.
MAN_BUILD  := build/man
$(MAN_BUILD)/kvd.conf.5: config/kvd.conf packaging/man/kvd.conf.5.awk Sources/kvd/KVD.swift
	@mkdir -p $(MAN_BUILD)
	awk -v version='$(VERSION)' -v date="$$(git log -1 --format=%cs -- config/kvd.conf 2>/dev/null || date +%F)" \
		-f packaging/man/kvd.conf.5.awk config/kvd.conf > $@.tmp && mv $@.tmp $@

# Installs a configuration file unless the administrator edited the one in place: then the new
# default goes beside it as NAME.new. Usage: $(call install_config,SOURCE,DESTINATION).
define install_config
	@if [ ! -e $(2) ]; then \
		install -D -m 0644 $(1) $(2); \
	elif ! cmp -s $(1) $(2); then \
		install -m 0644 $(1) $(2).new; \
		echo "kept $(2) (edited); the new default is $(notdir $(2)).new beside it"; \
	fi
endef

BINARIES := kvd kvload kvbench
install: static $(MAN_BUILD)/kvd.conf.5
	@# kvd@.service repeats kvd.service's settings from ExecReload= on (restarts, watchdog, hardening).
	@settings() { sed -n '/^ExecReload=/,$${/^#/d;/^$$/d;p}' $$1; }; \
	if [ "$$(settings packaging/systemd/kvd.service)" != "$$(settings packaging/systemd/kvd@.service)" ]; then \
		echo "packaging/systemd/kvd@.service and kvd.service differ after ExecReload=: keep them the same"; exit 1; \
	fi
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR) $(DESTDIR)$(DOCDIR)
	@for binary in $(BINARIES); do \
		echo "install $(DESTDIR)$(PREFIX)/bin/$$binary"; \
		install -m 0755 -s $(STATIC_BIN)/$$binary $(DESTDIR)$(PREFIX)/bin/$$binary || exit 1; \
	done
	@# The units (kvd, its kvd@NAME template, the socket, kvload and its timer), paths adjusted.
	@for unit in packaging/systemd/*; do \
		sed -e 's|/usr/bin/|$(PREFIX)/bin/|g' -e 's|/etc/kvd.conf|$(SYSCONFDIR)/kvd.conf|g' \
			-e 's|/etc/kvd/|$(SYSCONFDIR)/kvd/|g' -e 's|/etc/default/kvload|$(SYSCONFDIR)/default/kvload|g' \
			-e 's|/usr/share/doc/kvd/|$(DOCDIR)/|g' $$unit > $(DESTDIR)$(UNITDIR)/$${unit##*/} || exit 1; \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$${unit##*/}; \
	done
	@for page in packaging/man/*.[1-8] $(MAN_BUILD)/kvd.conf.5; do \
		install -D -m 0644 $$page $(DESTDIR)$(MANDIR)/man$${page##*.}/$${page##*/} || exit 1; \
	done
	$(call install_config,config/kvd.conf,$(DESTDIR)$(SYSCONFDIR)/kvd.conf)
	$(call install_config,packaging/default/kvload,$(DESTDIR)$(SYSCONFDIR)/default/kvload)
	@# The README and every page under docs/ (the README links to them).
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

# kvd_<version>_amd64.deb: Depends computed by dpkg-shlibdeps from what the binaries link,
# /etc/kvd.conf and /etc/default/kvload conffiles, maintainer scripts that enable and start
# kvd.service.
DEB_TOOLS := dpkg-dev lintian
deb: static
	@missing=$$(for p in $(DEB_TOOLS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing; fi
	rm -rf $(DEB_WORK) && mkdir -p $(DEB_WORK)/root/DEBIAN $(DEB_WORK)/debian
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(DEB_WORK)/root PREFIX=/usr SYSCONFDIR=/etc \
		UNITDIR=/lib/systemd/system STATIC_BUILD=$(STATIC_BUILD)
	install -m 0644 packaging/debian/copyright $(DEB_WORK)/root/usr/share/doc/kvd/copyright
	printf 'kvd (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- kvd maintainers <kvd@example.invalid>  %s\n' \
		"$(VERSION)" "$(VERSION)" "$$(date -R -d @$$(git log -1 --format=%ct 2>/dev/null || date +%s))" \
		| gzip -9n > $(DEB_WORK)/root/usr/share/doc/kvd/changelog.gz
	gzip -9n $(DEB_WORK)/root/usr/share/doc/kvd/*.md
	find $(DEB_WORK)/root/usr/share/man -type f -exec gzip -9n {} +
	install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm $(DEB_WORK)/root/DEBIAN/
	printf '/etc/default/kvload\n/etc/kvd.conf\n' > $(DEB_WORK)/root/DEBIAN/conffiles
	printf 'Source: kvd\n\nPackage: kvd\nArchitecture: amd64\n' > $(DEB_WORK)/debian/control
	cd $(DEB_WORK) && dpkg-shlibdeps -O $$(find root/usr/bin -type f -printf '-e%p ') | sed -n 's/^shlibs:Depends=//p' > depends
	sed -e 's/@VERSION@/$(VERSION)/' -e "s/@SIZE@/$$(du -sk --exclude=DEBIAN $(DEB_WORK)/root | cut -f1)/" \
		-e "s/@DEPENDS@/$$(cat $(DEB_WORK)/depends)/" packaging/debian/control.in > $(DEB_WORK)/root/DEBIAN/control
	cd $(DEB_WORK)/root && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums
	dpkg-deb --root-owner-group --build $(DEB_WORK)/root $(DEB)
	lintian --fail-on error $(DEB)

# End-to-end under a real systemd (debootstrap + systemd-nspawn); needs root.
E2E_PACKAGES := debootstrap systemd-container
e2e: deb
	@missing=$$(for p in $(E2E_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing; fi
	$(SUDO) ./scripts/e2e-systemd.sh $(DEB)

# --- Robustness suites (issue 9) ------------------------------------------------------
# fuzz: every libFuzzer harness of Fuzz/ for FUZZ_SECONDS each (crash inputs in .build-fuzz/artifacts).
# sanitize: the test suite under ASan+LSan and under TSan (SANITIZE_FILTER narrows it).
# stress: slowloris, a connection flood, a verifying soak with Redis killed twice, big values,
# against the release kvd (several minutes; STRESS_SOAK_SECONDS sets the soak).
FUZZ_SECONDS ?= 60
.PHONY: fuzz sanitize stress

fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh

sanitize: deps
	./scripts/sanitize.sh

stress: release
	./scripts/stress.sh $(RELEASE_BIN)

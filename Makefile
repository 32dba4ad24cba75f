# dvrflow — the two commands: `make demo` and `make test`.
# Both install what they need (Open vSwitch, iproute2, ping, tcpdump) when missing and clean up
# after themselves. They need root (namespaces, a private ovs-vswitchd per simulated host).

GO      ?= go
# Slow multi-host suites run by default (CI); `make test SHORT=1` skips them locally.
SHORT   ?=
TESTFLAGS ?= -count=1 -timeout 20m $(if $(SHORT),-short,)
# Packages with goroutines get the race detector.
RACE_PKGS = ./flows/... ./ovsdb/... ./controller/... ./topology/... ./agentapi/... ./e2e/... ./testbed/rabbitmq/... ./neutron/...

.PHONY: all build demo test unit vet fmt deps clean

all: build

build:
	$(GO) build ./...

deps:
	@command -v ovs-vswitchd >/dev/null && command -v ip >/dev/null && command -v ping >/dev/null \
	  && command -v tcpdump >/dev/null && command -v arping >/dev/null || { \
	  echo "installing openvswitch-switch iproute2 iputils-ping iputils-arping tcpdump"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    openvswitch-switch iproute2 iputils-ping iputils-arping tcpdump util-linux >/dev/null; }

demo: deps
	$(GO) run ./cmd/dvrflow-demo

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

test: deps vet
	$(GO) test $(TESTFLAGS) $$($(GO) list ./... | grep -v -E '/(flows|ovsdb|controller|topology|agentapi|e2e)(/|$$)' \
	  | grep -v -E '^github.com/dvrflow/dvrflow/(testbed/rabbitmq|neutron)(/|$$)')
	$(GO) test $(TESTFLAGS) -race $(RACE_PKGS)
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME)

# Fuzzing (Go's native fuzzer): every decoder of outside input — the topology file and its
# validation, the ini loader, OVSDB's table updates, the OpenFlow flow stats, flow monitor
# updates and errors, the OXM matches a switch reports, the CLI's inputs (dump-flows text,
# ovsdb-client dumps, ofproto/trace output), oslo.messaging bodies and transport_url — runs
# for FUZZTIME each. The seed corpora (f.Add in each target, and testdata/fuzz/ where the
# fuzzer found something) also run in every plain `go test`; `make test` fuzzes each
# briefly on top.
FUZZTIME ?= 30s
TEST_FUZZTIME ?= 3s
FUZZ_TARGETS = ./topology:FuzzParseAndValidate ./controller/config:FuzzLoadConfig ./ovsdb:FuzzDecodeUpdates \
  ./flows:FuzzCanonicalMatch ./flows/ofconn:FuzzParseFlowStats ./flows/ofconn:FuzzFlowMonitorUpdates \
  ./flows/ofconn:FuzzParseError ./flows/dumptext:FuzzParseLine ./ovsdb:FuzzParseInventoryDump ./trace:FuzzParse \
  ./neutron/oslo:FuzzDecodeMessage ./neutron/oslo:FuzzParseTransportURL
.PHONY: fuzz
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz $$fn ($$pkg) for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; done

# Pure tests only, for fast feedback while editing: -short skips every test that needs a real
# Open vSwitch (no ovsdb-server or ovs-vswitchd is started, nothing is installed).
unit:
	$(GO) test -short -count=1 ./northbound/ ./topology/ ./architecture/ ./flows/... ./l2/ ./dvr/ \
	  ./tunnels/ ./pipeline/ ./controller/... ./flowgraph/... ./report/ ./cmd/dvrflow/ ./neutron/... ./testbed/neutron/

# Stop every sandbox host a crashed run may have left behind (by recorded pid only).
clean:
	-$(GO) run ./cmd/dvrflow-sandbox down-all

# Benchmarks (not part of `make test`): the agent against ovs-ofctl on sandbox hosts for
# N = 100, 1000 and 10000 ports, then beside Neutron's agent under a real neutron-server
# (-neutron=false skips that), then the firewall at scale beside Neutron's agent: a rule
# added to a group of 200 ports and 50 rules (-neutron-fw=false skips that; about 11 minutes,
# most of it Neutron's agent); prints the table, writes bench/RESULTS.md and README.md's
# summary (raw figures in bench/results.json). BENCHFLAGS passes options (go run ./bench -h).
BENCHFLAGS ?=
.PHONY: bench
bench: deps
	GO=$(GO) $(GO) run ./bench -readme README.md -json bench/results.json $(BENCHFLAGS)

// Package neutron is the project's Neutron test harness: a real neutron-server 21 (Zed,
// Debian's packages) on 127.0.0.1 with a private MariaDB and a private RabbitMQ
// ([rabbitmq]), a typed client for its noauth REST API, and simulated agent hosts
// (package sandbox) on a shared underlay that run Neutron's own Python Open vSwitch agent,
// an L3-agent stand-in for DVR, and VMs plugged as Nova would plug them. The acceptance
// tests compare dvrflow-agent with Neutron's agent under one neutron-server with it.
//
// Everything listens on 127.0.0.1 (or inside namespaces it created) on free ports it picked;
// every process is started in its own process group and stopped through its recorded pid.
// docs/neutron-testbed.md describes what runs where. The product never imports this package.
package neutron

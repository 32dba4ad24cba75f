package sandbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// VMInterface is the name of the VM's end of its veth pair, inside the VM.
const VMInterface = "eth0"

var validIfName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

// VMSpec describes a VM: a network namespace inside a host whose interface
// VMInterface is one end of a veth pair; the other end stays in the host's
// namespace and is a port of an OVS bridge.
type VMSpec struct {
	Name          string // netns name inside the host; base of the default port name
	Bridge        string // OVS bridge to plug into, e.g. "br-int"
	PortName      string // OVS port (and host-side veth) name, ≤ 15 chars; default "tap"+Name, cut to 15
	IfaceID       string // external_ids:iface-id (the Neutron port UUID); omitted if empty
	VMUUID        string // external_ids:vm-uuid (the Nova instance, the port's device_id); omitted if empty
	MAC           string // MAC of the VM interface, also external_ids:attached-mac; default random fa:16:3e:xx:xx:xx
	CIDR          string // address of the VM interface, e.g. "10.0.1.11/24"; none if empty
	Gateway       string // default route via this address; none if empty
	MTU           int    // MTU of both veth ends; kernel default if 0
	OfportRequest int    // ofport_request of the OVS interface; OVS picks if 0
	// HybridPlug plugs the VM as os-vif does for Neutron's iptables_hybrid firewall: the
	// host end (PortName, which must start with "tap") goes into a Linux bridge
	// qbr<suffix>, joined to Bridge by a veth pair qvb<suffix> (in the Linux bridge) and
	// qvo<suffix> (the OVS port, with the external_ids); suffix is PortName without "tap".
	HybridPlug bool
}

// VM is a network namespace inside a Host, plugged into an OVS bridge.
type VM struct {
	host *Host
	spec VMSpec
}

// Spec returns the VM's spec with defaults (PortName, MAC) filled in.
func (vm *VM) Spec() VMSpec { return vm.spec }

// Name returns the VM's netns name.
func (vm *VM) Name() string { return vm.spec.Name }

// OVSPort returns the name of the VM's port on its OVS bridge: PortName, or qvo<suffix>
// with HybridPlug.
func (vm *VM) OVSPort() string { return vm.spec.ovsPort() }

func (s VMSpec) ovsPort() string {
	if s.HybridPlug {
		return "qvo" + strings.TrimPrefix(s.PortName, "tap")
	}
	return s.PortName
}

// AddVM creates the VM's namespace and veth pair, configures the VM
// interface, and adds the host end to spec.Bridge with external_ids
// iface-id, attached-mac and iface-status=active in one ovs-vsctl call.
// Both veth ends get TX checksum offload turned off, or TCP and UDP between
// VMs would fail: the userspace datapath does not fill in checksums left to
// the NIC. On failure it removes what it created.
func (h *Host) AddVM(ctx context.Context, spec VMSpec) (_ *VM, err error) {
	if spec.PortName == "" {
		spec.PortName = "tap" + spec.Name
		if len(spec.PortName) > 15 {
			spec.PortName = spec.PortName[:15]
		}
	}
	if spec.MAC == "" {
		spec.MAC = randomMAC()
	}
	if !validIfName.MatchString(spec.Name) {
		return nil, fmt.Errorf("add VM %q on host %s: invalid name", spec.Name, h.name)
	}
	if !validIfName.MatchString(spec.PortName) {
		return nil, fmt.Errorf("add VM %s on host %s: invalid port name %q (≤ 15 chars)", spec.Name, h.name, spec.PortName)
	}
	if spec.Bridge == "" {
		return nil, fmt.Errorf("add VM %s on host %s: no bridge", spec.Name, h.name)
	}
	if spec.HybridPlug && !strings.HasPrefix(spec.PortName, "tap") {
		return nil, fmt.Errorf("add VM %s on host %s: hybrid plug needs a port name starting with tap, not %q", spec.Name, h.name, spec.PortName)
	}
	if _, err := net.ParseMAC(spec.MAC); err != nil {
		return nil, fmt.Errorf("add VM %s on host %s: %w", spec.Name, h.name, err)
	}
	h.mu.Lock()
	if h.stopped.Load() {
		h.mu.Unlock()
		return nil, fmt.Errorf("add VM %s on host %s: host is stopped", spec.Name, h.name)
	}
	if _, dup := h.vms[spec.Name]; dup {
		h.mu.Unlock()
		return nil, fmt.Errorf("add VM %s on host %s: already exists", spec.Name, h.name)
	}
	vm := &VM{host: h, spec: spec}
	h.vms[spec.Name] = vm
	h.mu.Unlock()
	// undo holds what to take back if a later step fails, newest last.
	var undo [][]string
	defer func() {
		if err == nil {
			return
		}
		uctx := context.WithoutCancel(ctx)
		for i := len(undo) - 1; i >= 0; i-- {
			_, _ = h.Run(uctx, undo[i][0], undo[i][1:]...)
		}
		h.mu.Lock()
		delete(h.vms, spec.Name)
		h.mu.Unlock()
		err = fmt.Errorf("add VM %s on host %s: %w", spec.Name, h.name, err)
	}()

	if _, err := h.Run(ctx, "ip", "netns", "add", spec.Name); err != nil {
		return nil, err
	}
	undo = append(undo, []string{"ip", "netns", "delete", spec.Name})
	link := []string{"link", "add", spec.PortName}
	peer := []string{"type", "veth", "peer", "name", VMInterface, "address", spec.MAC}
	if spec.MTU > 0 {
		link = append(link, "mtu", strconv.Itoa(spec.MTU))
		peer = append(peer, "mtu", strconv.Itoa(spec.MTU))
	}
	peer = append(peer, "netns", spec.Name)
	if _, err := h.Run(ctx, "ip", append(link, peer...)...); err != nil {
		return nil, err
	}
	undo = append(undo, []string{"ip", "link", "delete", spec.PortName})
	if err := disableTxChecksum(vm.nsPath(), VMInterface); err != nil {
		return nil, err
	}
	if err := disableTxChecksum(h.netnsPath(), spec.PortName); err != nil {
		return nil, err
	}
	if _, err := h.Run(ctx, "ip", "link", "set", spec.PortName, "up"); err != nil {
		return nil, err
	}
	steps := [][]string{{"ip", "link", "set", "lo", "up"}}
	if spec.CIDR != "" {
		steps = append(steps, []string{"ip", "addr", "add", spec.CIDR, "dev", VMInterface})
	}
	steps = append(steps, []string{"ip", "link", "set", VMInterface, "up"})
	if spec.Gateway != "" {
		steps = append(steps, []string{"ip", "route", "add", "default", "via", spec.Gateway, "dev", VMInterface})
	}
	for _, s := range steps {
		if _, err := vm.Run(ctx, s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	if spec.HybridPlug {
		if err := h.addHybridBridge(ctx, spec, &undo); err != nil {
			return nil, err
		}
	}
	vsctl := []string{"add-port", spec.Bridge, spec.ovsPort(), "--", "set", "Interface", spec.ovsPort(),
		"external_ids:attached-mac=" + strconv.Quote(spec.MAC), "external_ids:iface-status=active"}
	if spec.IfaceID != "" {
		vsctl = append(vsctl, "external_ids:iface-id="+strconv.Quote(spec.IfaceID))
	}
	if spec.VMUUID != "" {
		vsctl = append(vsctl, "external_ids:vm-uuid="+strconv.Quote(spec.VMUUID))
	}
	if spec.OfportRequest > 0 {
		vsctl = append(vsctl, "ofport_request="+strconv.Itoa(spec.OfportRequest))
	}
	if _, err := h.Vsctl(ctx, vsctl...); err != nil {
		return nil, err
	}
	h.log.Info("sandbox VM added", zap.String("vm", spec.Name), zap.String("bridge", spec.Bridge),
		zap.String("port", spec.PortName), zap.String("mac", spec.MAC), zap.String("cidr", spec.CIDR))
	return vm, nil
}

// addHybridBridge makes os-vif's hybrid plug between the VM's host end and its OVS port:
// Linux bridge qbr<suffix> holding the host end and qvb<suffix>, whose veth peer
// qvo<suffix> is what goes on the OVS bridge. What it made is appended to undo.
func (h *Host) addHybridBridge(ctx context.Context, spec VMSpec, undo *[][]string) error {
	suffix := strings.TrimPrefix(spec.PortName, "tap")
	qbr, qvb, qvo := "qbr"+suffix, "qvb"+suffix, "qvo"+suffix
	if _, err := h.Run(ctx, "ip", "link", "add", qbr, "type", "bridge", "stp_state", "0", "forward_delay", "0"); err != nil {
		return err
	}
	*undo = append(*undo, []string{"ip", "link", "delete", qbr})
	veth := []string{"link", "add", qvb}
	peer := []string{"type", "veth", "peer", "name", qvo}
	if spec.MTU > 0 {
		veth = append(veth, "mtu", strconv.Itoa(spec.MTU))
		peer = append(peer, "mtu", strconv.Itoa(spec.MTU))
	}
	if _, err := h.Run(ctx, "ip", append(veth, peer...)...); err != nil {
		return err
	}
	*undo = append(*undo, []string{"ip", "link", "delete", qvb})
	for _, ifname := range []string{qvb, qvo} {
		if err := disableTxChecksum(h.netnsPath(), ifname); err != nil {
			return err
		}
	}
	for _, step := range [][]string{
		{"ip", "link", "set", qbr, "up"},
		{"ip", "link", "set", spec.PortName, "master", qbr},
		{"ip", "link", "set", qvb, "master", qbr},
		{"ip", "link", "set", qvb, "up"},
		{"ip", "link", "set", qvo, "up"},
	} {
		if _, err := h.Run(ctx, step[0], step[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// RemoveVM unplugs the VM named name from its bridge, stops the processes
// inside it and deletes its namespace and veth pair.
func (h *Host) RemoveVM(ctx context.Context, name string) error {
	h.mu.Lock()
	vm := h.vms[name]
	h.mu.Unlock()
	if vm == nil {
		return fmt.Errorf("remove VM %s on host %s: no such VM", name, h.name)
	}
	if err := h.removeVM(ctx, vm); err != nil {
		return fmt.Errorf("remove VM %s on host %s: %w", name, h.name, err)
	}
	h.log.Info("sandbox VM removed", zap.String("vm", name))
	return nil
}

func (h *Host) removeVM(ctx context.Context, vm *VM) error {
	s := vm.spec
	if _, err := h.Vsctl(ctx, "--if-exists", "del-port", s.Bridge, s.ovsPort()); err != nil {
		return err
	}
	if s.HybridPlug {
		suffix := strings.TrimPrefix(s.PortName, "tap")
		for _, ifname := range []string{"qvb" + suffix, "qbr" + suffix} {
			if _, err := h.Run(ctx, "ip", "link", "show", ifname); err == nil {
				if _, err := h.Run(ctx, "ip", "link", "delete", ifname); err != nil {
					return err
				}
			}
		}
	}
	if id, ok := nsOf(vm.nsPath()); ok {
		if err := stopProcs(ctx, nsMembers(nil, []nsID{id})); err != nil {
			return err
		}
		if _, err := h.Run(ctx, "ip", "netns", "delete", s.Name); err != nil {
			return err
		}
	}
	// Deleting the namespace destroys the veth pair, but the kernel does it
	// asynchronously: the host end may still show, then be gone before the
	// delete below, which is fine. This is for a pair whose VM end never made
	// it into the namespace.
	if _, err := h.Run(ctx, "ip", "link", "show", s.PortName); err == nil {
		if _, err := h.Run(ctx, "ip", "link", "delete", s.PortName); err != nil {
			if _, still := h.Run(ctx, "ip", "link", "show", s.PortName); still == nil {
				return err
			}
		}
	}
	h.mu.Lock()
	if h.vms[s.Name] == vm {
		delete(h.vms, s.Name)
	}
	h.mu.Unlock()
	return nil
}

// nsPath is the VM's network namespace file, seen from our mount namespace.
func (vm *VM) nsPath() string {
	return filepath.Join("/proc", strconv.Itoa(vm.host.holder.pid), "root/run/netns", vm.spec.Name)
}

// Command returns a command that runs inside the VM's namespace (through the
// host: nsenter, then `ip netns exec`).
func (vm *VM) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return vm.host.Command(ctx, "ip", append([]string{"netns", "exec", vm.spec.Name, name}, args...)...)
}

// Run runs a command inside the VM and returns its combined output; the
// error carries the command line and output.
func (vm *VM) Run(ctx context.Context, name string, args ...string) (string, error) {
	return vm.host.Run(ctx, "ip", append([]string{"netns", "exec", vm.spec.Name, name}, args...)...)
}

// Ping sends count pings from the VM to ip (-W 1 -i 0.2) and, like ping,
// fails only if none is answered; the error carries ping's output.
func (vm *VM) Ping(ctx context.Context, ip string, count int) error {
	if _, err := vm.Run(ctx, "ping", "-n", "-c", strconv.Itoa(count), "-W", "1", "-i", "0.2", ip); err != nil {
		return fmt.Errorf("ping %s from VM %s: %w", ip, vm.spec.Name, err)
	}
	return nil
}

// Link joins host a and host b with a veth pair, named ifA in a and ifB in b,
// both brought up (TX checksum offload off, as for VMs).
func Link(ctx context.Context, a *Host, ifA string, b *Host, ifB string) error {
	if !validIfName.MatchString(ifA) || !validIfName.MatchString(ifB) {
		return fmt.Errorf("link %s:%s to %s:%s: invalid interface name (≤ 15 chars)", a.name, ifA, b.name, ifB)
	}
	if _, err := a.Run(ctx, "ip", "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", strconv.Itoa(b.Pid())); err != nil {
		return fmt.Errorf("link %s:%s to %s:%s: %w", a.name, ifA, b.name, ifB, err)
	}
	err := errors.Join(
		disableTxChecksum(a.netnsPath(), ifA),
		disableTxChecksum(b.netnsPath(), ifB),
	)
	if err == nil {
		_, err = a.Run(ctx, "ip", "link", "set", ifA, "up")
	}
	if err == nil {
		_, err = b.Run(ctx, "ip", "link", "set", ifB, "up")
	}
	if err != nil {
		_, _ = a.Run(context.WithoutCancel(ctx), "ip", "link", "delete", ifA)
		return fmt.Errorf("link %s:%s to %s:%s: %w", a.name, ifA, b.name, ifB, err)
	}
	a.log.Info("sandbox hosts linked", zap.String("if", ifA), zap.String("peer_host", b.name), zap.String("peer_if", ifB))
	return nil
}

// randomMAC returns a MAC in Neutron's default fa:16:3e prefix.
func randomMAC() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", b[0], b[1], b[2])
}

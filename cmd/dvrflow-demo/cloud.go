package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// templatePath is the per-host topology template, relative to the repository root.
const templatePath = "testdata/demo/dvr_host.yaml.tmpl"

// routerID is the distributed router of the template; its namespace is qrouter-<routerID>.
const routerID = "e0000001-0000-4000-8000-000000000001"

// subnet is one of the router's subnets as the template defines it.
type subnet struct {
	Name, NetworkName, NetworkID, ID, CIDR, GatewayIP, GatewayMAC string
	VLAN                                                          int
}

// host is one compute host: its name in the cloud and its DVR MAC.
type host struct{ Name, DVRMAC string }

// vm is a VM of the cloud, in the template's terms (Host is the compute host it runs on).
type vm struct{ Name, Host, PortID, NetworkID, SubnetID, MAC, IP string }

// cloud is what the template is rendered from, minus the host it is rendered for.
type cloud struct {
	Hosts []host
	VMs   []vm
}

var (
	subnetA = subnet{Name: "subnet-a", NetworkName: "net-a", NetworkID: "a0000001-0000-4000-8000-000000000001",
		ID: "b0000001-0000-4000-8000-000000000001", CIDR: "10.0.1.0/24", GatewayIP: "10.0.1.1", GatewayMAC: "fa:16:3e:aa:01:01", VLAN: 101}
	subnetB = subnet{Name: "subnet-b", NetworkName: "net-b", NetworkID: "a0000002-0000-4000-8000-000000000002",
		ID: "b0000002-0000-4000-8000-000000000002", CIDR: "10.0.2.0/24", GatewayIP: "10.0.2.1", GatewayMAC: "fa:16:3e:aa:02:01", VLAN: 102}
	// routerPorts are the router's interfaces (port id → subnet), as in the template.
	routerPorts = map[string]subnet{
		"d0000001-0000-4000-8000-000000000001": subnetA,
		"d0000002-0000-4000-8000-000000000002": subnetB,
	}
)

// newVM returns VM name (say "a1") on host h in subnet s: address .10+n of the subnet, MAC
// fa:16:3e:00:0<1|2>:<10+n>, port id c00000<name>-….
func newVM(name, h string, s subnet, n int) vm {
	third := strings.Split(s.GatewayIP, ".")[2]
	octet := fmt.Sprint(10 + n)
	return vm{
		Name: name, Host: h, NetworkID: s.NetworkID, SubnetID: s.ID,
		MAC:    "fa:16:3e:00:0" + third + ":" + octet,
		IP:     "10.0." + third + "." + octet,
		PortID: "c00000" + name + "-0000-4000-8000-0000000000" + octet,
	}
}

// demoCloud: two compute hosts, a1 and b1 on compute1, a2 and b2 on compute2 (a: subnet A on
// VLAN 101, b: subnet B on VLAN 102).
func demoCloud() cloud {
	return cloud{
		Hosts: []host{{"compute1", "fa:16:3f:00:00:01"}, {"compute2", "fa:16:3f:00:00:02"}},
		VMs: []vm{
			newVM("a1", "compute1", subnetA, 1), newVM("b1", "compute1", subnetB, 1),
			newVM("a2", "compute2", subnetA, 2), newVM("b2", "compute2", subnetB, 2),
		},
	}
}

// subnetOf returns the subnet of a VM.
func subnetOf(v vm) subnet {
	if v.SubnetID == subnetB.ID {
		return subnetB
	}
	return subnetA
}

// vmNamed returns the VM called name.
func (c cloud) vmNamed(name string) vm {
	for _, v := range c.VMs {
		if v.Name == name {
			return v
		}
	}
	panic("no VM " + name)
}

// dvrMAC returns the DVR MAC of host name.
func (c cloud) dvrMAC(name string) string {
	for _, h := range c.Hosts {
		if h.Name == name {
			return h.DVRMAC
		}
	}
	return ""
}

// render returns the topology of host name.
func (c cloud) render(tmpl *template.Template, name string) ([]byte, error) {
	var b bytes.Buffer
	data := struct {
		Host string
		cloud
	}{name, c}
	if err := tmpl.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("render the topology of %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// writeTopology renders the topology of host name into dir/<name>.yaml and returns its path.
func (c cloud) writeTopology(tmpl *template.Template, dir, name string) (string, error) {
	data, err := c.render(tmpl, name)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("write the topology of %s: %w", name, err)
	}
	return path, nil
}

// repoRoot returns the repository root: the working directory or the closest parent holding
// go.mod and the template (make demo runs in the root).
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, templatePath)); err == nil {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return d, nil
			}
		}
		if d == filepath.Dir(d) {
			return "", errors.New("run the demo inside the dvrflow repository (make demo): " + templatePath + " not found")
		}
	}
}

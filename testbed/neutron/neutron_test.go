package neutron

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"gopkg.in/ini.v1"
)

func parseINI(t *testing.T, text string) *ini.File {
	t.Helper()
	f, err := ini.Load([]byte(text))
	if err != nil {
		t.Fatalf("rendered file does not parse: %v\n%s", err, text)
	}
	return f
}

func TestServerConfig(t *testing.T) {
	c := ServerConfig{
		APIPort: 19696, TransportURL: "rabbit://guest:guest@127.0.0.1:19672/",
		DatabaseURL: "mysql+pymysql://neutron:neutron@127.0.0.1:19633/neutron",
		StateDir:    "/tb/state", LockDir: "/tb/lock", LogDir: "/tb/logs",
		FlatNetworks: []string{"physnet1", "external"}, NetworkVLANRanges: []string{"physnet1:100:199", "physnet2"},
	}
	conf := parseINI(t, c.NeutronConf())
	for key, want := range map[string]string{
		"DEFAULT.auth_strategy":           "noauth",
		"DEFAULT.bind_host":               "127.0.0.1",
		"DEFAULT.bind_port":               "19696",
		"DEFAULT.router_distributed":      "True",
		"DEFAULT.service_plugins":         "router",
		"DEFAULT.transport_url":           c.TransportURL,
		"DEFAULT.agent_down_time":         "75",
		"database.connection":             c.DatabaseURL,
		"oslo_concurrency.lock_path":      "/tb/lock",
		"oslo_policy.enforce_scope":       "False",
		"DEFAULT.rpc_workers":             "1",
		"DEFAULT.enable_traditional_dhcp": "False",
	} {
		sec, k, _ := strings.Cut(key, ".")
		if got := conf.Section(sec).Key(k).String(); got != want {
			t.Errorf("neutron.conf %s = %q, want %q", key, got, want)
		}
	}
	ml2 := parseINI(t, c.ML2Conf())
	for key, want := range map[string]string{
		"ml2.type_drivers":                    "flat,vlan,vxlan",
		"ml2.tenant_network_types":            "vxlan",
		"ml2.mechanism_drivers":               "openvswitch,l2population",
		"ml2_type_flat.flat_networks":         "physnet1,external",
		"ml2_type_vlan.network_vlan_ranges":   "physnet1:100:199,physnet2",
		"ml2_type_vxlan.vni_ranges":           "1000:1999",
		"securitygroup.firewall_driver":       "openvswitch",
		"securitygroup.enable_security_group": "True",
	} {
		sec, k, _ := strings.Cut(key, ".")
		if got := ml2.Section(sec).Key(k).String(); got != want {
			t.Errorf("ml2_conf.ini %s = %q, want %q", key, got, want)
		}
	}
	c.FirewallDriver = "noop"
	if got := parseINI(t, c.ML2Conf()).Section("securitygroup").Key("enable_security_group").String(); got != "False" {
		t.Errorf("noop firewall: enable_security_group = %q, want False", got)
	}
}

func TestAgentConfig(t *testing.T) {
	c := AgentConfig{
		Host: "compute-1", TransportURL: "rabbit://guest:guest@127.0.0.1:19672/",
		LocalIP: netip.MustParseAddr("10.255.0.11"), TunnelTypes: []string{"vxlan", "gre"},
		BridgeMappings: map[string]string{"physnet2": "br-ex", "physnet1": "br-vlan"},
		L2Population:   true, EnableDistributedRouting: true, FirewallDriver: "iptables_hybrid",
		OVSDBConnection: "unix:/run/h/db.sock", LogDir: "/tb/logs", LogFile: "ovs-agent-compute-1.log",
	}
	f := parseINI(t, c.INI())
	for key, want := range map[string]string{
		"DEFAULT.host":                        "compute-1",
		"agent.tunnel_types":                  "vxlan,gre",
		"agent.l2_population":                 "True",
		"agent.enable_distributed_routing":    "True",
		"agent.arp_responder":                 "False",
		"agent.root_helper":                   "env",
		"agent.report_interval":               "30",
		"ovs.local_ip":                        "10.255.0.11",
		"ovs.datapath_type":                   "netdev",
		"ovs.bridge_mappings":                 "physnet1:br-vlan,physnet2:br-ex",
		"ovs.ovsdb_connection":                "unix:/run/h/db.sock",
		"securitygroup.firewall_driver":       "iptables_hybrid",
		"securitygroup.enable_security_group": "True",
	} {
		sec, k, _ := strings.Cut(key, ".")
		if got := f.Section(sec).Key(k).String(); got != want {
			t.Errorf("openvswitch_agent.ini %s = %q, want %q", key, got, want)
		}
	}
	// Without a tunnel endpoint there is no local_ip line at all, and an empty
	// bridge_mappings stays a valid (empty) option.
	c.LocalIP, c.BridgeMappings = netip.Addr{}, nil
	f = parseINI(t, c.INI())
	if f.Section("ovs").HasKey("local_ip") {
		t.Error("local_ip rendered without a tunnel endpoint")
	}
	if got := f.Section("ovs").Key("bridge_mappings").String(); got != "" {
		t.Errorf("empty bridge_mappings rendered as %q", got)
	}
}

func TestClientNoauthRequests(t *testing.T) {
	var got map[string]map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("X-Project-Id"); h != "" {
			t.Errorf("request sent X-Project-Id %q: noauth answers 400 to it", h)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v2.0/ports" {
			t.Errorf("request %s %s, want POST /v2.0/ports", r.Method, r.URL.Path)
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"port":{"id":"p1","status":"DOWN","binding:host_id":"compute-1","binding:vif_type":"ovs",` +
			`"fixed_ips":[{"subnet_id":"s1","ip_address":"10.10.0.5"}]}}`))
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/v2.0"}
	p, err := c.CreatePort(context.Background(), PortRequest{NetworkID: "n1", DeviceOwner: "compute:nova", DeviceID: "vm1", HostID: "compute-1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.HostID != "compute-1" || p.VIFType != "ovs" || p.FixedIPs[0].IPAddress != "10.10.0.5" {
		t.Errorf("decoded port %+v", p)
	}
	body := got["port"]
	for k, want := range map[string]any{"project_id": "demo", "binding:host_id": "compute-1", "device_owner": "compute:nova", "network_id": "n1"} {
		if body[k] != want {
			t.Errorf("request body %s = %v, want %v (body %v)", k, body[k], want, body)
		}
	}
	if _, ok := body["mac_address"]; ok {
		t.Errorf("request body has an empty mac_address: %v", body)
	}
}

// TestClientSecurityGroupRequests checks the paths and bodies of the security-group,
// address-group and extension requests, and the allowed address pairs of a port.
func TestClientSecurityGroupRequests(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+string(body)))
		answers := map[string]string{
			"/v2.0/extensions":      `{"extensions":[{"alias":"address-group"}]}`,
			"/v2.0/security-groups": `{"security_group":{"id":"g1","name":"web","stateful":false,"security_group_rules":[{"id":"r1","direction":"egress","ethertype":"IPv4","protocol":null}]}}`,
			"/v2.0/address-groups":  `{"address_group":{"id":"a1","name":"admins","addresses":["192.0.2.0/28"]}}`,
			"/v2.0/ports":           `{"port":{"id":"p1","allowed_address_pairs":[{"ip_address":"10.0.0.200"}]}}`,
		}
		if r.Method == http.MethodGet && r.URL.Path == "/v2.0/security-groups" {
			answers[r.URL.Path] = `{"security_groups":[{"id":"d1","name":"default"}]}`
		}
		_, _ = w.Write([]byte(answers[r.URL.Path]))
	}))
	defer srv.Close()
	ctx := context.Background()
	c := &Client{BaseURL: srv.URL + "/v2.0", ProjectID: "p"}
	if ok, err := c.HasExtension(ctx, "address-group"); err != nil || !ok {
		t.Errorf("HasExtension(address-group) = %v, %v", ok, err)
	}
	if ok, err := c.HasExtension(ctx, "stateful-security-group"); err != nil || ok {
		t.Errorf("HasExtension(stateful-security-group) = %v, %v", ok, err)
	}
	g, err := c.CreateSecurityGroup(ctx, "web", nil)
	if err != nil || g.ID != "g1" || g.Stateful == nil || *g.Stateful || len(g.Rules) != 1 || g.Rules[0].Protocol != nil {
		t.Errorf("CreateSecurityGroup = %+v, %v", g, err)
	}
	stateless := false
	_, _ = c.CreateSecurityGroup(ctx, "web", &stateless)
	tcp, port := "tcp", 22
	if err := c.AddSecurityGroupRule(ctx, "g1", SecurityGroupRule{Direction: "ingress", EtherType: "IPv4", Protocol: &tcp, PortRangeMin: &port}); err != nil {
		t.Error(err)
	}
	if d, err := c.DefaultSecurityGroup(ctx); err != nil || d.ID != "d1" {
		t.Errorf("DefaultSecurityGroup = %+v, %v", d, err)
	}
	if _, err := c.GetSecurityGroup(ctx, "g1"); err != nil {
		t.Error(err)
	}
	if ag, err := c.CreateAddressGroup(ctx, "admins", []string{"192.0.2.0/28"}); err != nil || ag.ID != "a1" || len(ag.Addresses) != 1 {
		t.Errorf("CreateAddressGroup = %+v, %v", ag, err)
	}
	_, _ = c.CreatePort(ctx, PortRequest{NetworkID: "n1"})
	p, err := c.CreatePort(ctx, PortRequest{NetworkID: "n1", AllowedAddressPairs: []AddressPair{{IPAddress: "10.0.0.200"}}})
	if err != nil || len(p.AllowedAddressPairs) != 1 || p.AllowedAddressPairs[0].IPAddress != "10.0.0.200" {
		t.Errorf("CreatePort = %+v, %v", p, err)
	}
	want := []string{
		"GET /v2.0/extensions",
		"GET /v2.0/extensions",
		`POST /v2.0/security-groups {"security_group":{"name":"web","project_id":"p"}}`,
		`POST /v2.0/security-groups {"security_group":{"name":"web","project_id":"p","stateful":false}}`,
		`POST /v2.0/security-group-rules {"security_group_rule":{"security_group_id":"g1","direction":"ingress","ethertype":"IPv4","protocol":"tcp","port_range_min":22,"project_id":"p"}}`,
		"GET /v2.0/security-groups?name=default&project_id=p",
		"GET /v2.0/security-groups/g1",
		`POST /v2.0/address-groups {"address_group":{"addresses":["192.0.2.0/28"],"name":"admins","project_id":"p"}}`,
		`POST /v2.0/ports {"port":{"network_id":"n1","project_id":"p"}}`,
		`POST /v2.0/ports {"port":{"network_id":"n1","project_id":"p","allowed_address_pairs":[{"ip_address":"10.0.0.200"}]}}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestClientErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2.0/networks/") {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"NeutronError": {"type": "NetworkNotFound", "message": "Network nope could not be found.", "detail": ""}}`))
			return
		}
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("proxy says no"))
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/v2.0"}
	_, err := c.GetNetwork(context.Background(), "nope")
	if !IsNotFound(err) {
		t.Fatalf("GetNetwork of a missing network: %v, want a 404", err)
	}
	if want := "neutron API GET /networks/nope: HTTP 404 NetworkNotFound: Network nope could not be found."; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	_, err = c.ListAgents(context.Background(), "h", "")
	if err == nil || !strings.Contains(err.Error(), "HTTP 502: proxy says no") || IsNotFound(err) {
		t.Errorf("non-Neutron error: %v", err)
	}
}

func TestProcessStopsItsGroup(t *testing.T) {
	dir := t.TempDir()
	// The leader ignores SIGTERM and has a child: stop must reach the whole group.
	cmd := exec.Command("sh", "-c", `trap "" TERM; sleep 60 & wait`)
	p, err := startProcess("sleeper", cmd, dir, dir+"/sleeper.out")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if members := groupMembers(p.pid); len(members) < 2 {
		t.Fatalf("group %d has members %v, want the shell and its sleep", p.pid, members)
	}
	start := time.Now()
	if err := p.stop(context.Background(), 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if p.running() {
		t.Fatal("group still runs after stop")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %s", d)
	}
	if err := p.stop(context.Background(), time.Second); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestStopLeftovers(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	// A test bed whose owner is gone, with a daemon still running, and one whose owner (this
	// test) is alive.
	dead, live := tmp+"/dvrflow-neutron-1", tmp+"/dvrflow-neutron-2"
	var sleepers []*process
	for _, dir := range []string{dead, live} {
		if err := os.MkdirAll(dir+"/run", 0o755); err != nil {
			t.Fatal(err)
		}
		p, err := startProcess("sleeper", exec.Command("sleep", "60"), dir+"/run", dir+"/sleeper.out")
		if err != nil {
			t.Fatal(err)
		}
		sleepers = append(sleepers, p)
		t.Cleanup(func() { _ = p.stop(context.Background(), time.Second) })
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dead+"/"+ownerFile, []byte(strconv.Itoa(gone.Process.Pid)+" 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeOwner(live); err != nil {
		t.Fatal(err)
	}
	stopLeftovers(context.Background(), zaptest.NewLogger(t))
	if sleepers[0].running() {
		t.Error("the daemon of the test bed whose owner is gone still runs")
	}
	if _, err := os.Stat(dead + "/" + ownerFile); !os.IsNotExist(err) {
		t.Errorf("owner file of the stopped test bed: %v, want it removed", err)
	}
	if !sleepers[1].running() {
		t.Error("the daemon of a live test bed was stopped")
	}
}

package neutron

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestClientSetQuotas(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = strings.TrimSpace(r.Method + " " + r.URL.RequestURI() + " " + string(body))
		_, _ = w.Write([]byte(`{"quota":{"port":-1,"security_group_rule":-1}}`))
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/v2.0", ProjectID: "p"}
	if err := c.SetQuotas(context.Background(), map[string]int{"security_group_rule": -1, "port": -1}); err != nil {
		t.Fatal(err)
	}
	if want := `PUT /v2.0/quotas/p {"quota":{"port":-1,"security_group_rule":-1}}`; got != want {
		t.Errorf("request %s, want %s", got, want)
	}
}

func TestClientCreatePorts(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = strings.TrimSpace(r.Method + " " + r.URL.RequestURI() + " " + string(body))
		_, _ = w.Write([]byte(`{"ports":[{"id":"p1","binding:vif_type":"ovs"},{"id":"p2","binding:vif_type":"ovs"}]}`))
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/v2.0"}
	ports, err := c.CreatePorts(context.Background(), []PortRequest{{NetworkID: "n1", HostID: "h1"}, {NetworkID: "n1", ProjectID: "other"}})
	if err != nil || len(ports) != 2 || ports[0].ID != "p1" || ports[1].VIFType != "ovs" {
		t.Fatalf("CreatePorts = %+v, %v", ports, err)
	}
	want := `POST /v2.0/ports {"ports":[{"network_id":"n1","binding:host_id":"h1","project_id":"demo"},{"network_id":"n1","project_id":"other"}]}`
	if got != want {
		t.Errorf("request %s, want %s", got, want)
	}
}

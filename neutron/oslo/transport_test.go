package oslo

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseTransportURL(t *testing.T) {
	tests := []struct {
		url     string
		brokers []Broker
		vhost   string
		err     string
	}{
		{url: "rabbit://guest:guest@127.0.0.1:19672/", vhost: "/",
			brokers: []Broker{{Host: "127.0.0.1", Port: 19672, User: "guest", Password: "guest"}}},
		{url: "rabbit://openstack:s3cr%40t@ctl1:5672,openstack:other@ctl2:5673/neutron", vhost: "neutron",
			brokers: []Broker{{Host: "ctl1", Port: 5672, User: "openstack", Password: "s3cr@t"}, {Host: "ctl2", Port: 5673, User: "openstack", Password: "other"}}},
		{url: "rabbit://u:p@w@h1,h2", vhost: "/", // the last @ separates; a host without credentials gets guest
			brokers: []Broker{{Host: "h1", Port: 5672, User: "u", Password: "p@w"}, {Host: "h2", Port: 5672, User: "guest", Password: "guest"}}},
		{url: "rabbit://u:p@[fd00::1]:5671/%2F", vhost: "/",
			brokers: []Broker{{Host: "fd00::1", Port: 5671, User: "u", Password: "p"}}},
		{url: "rabbit://", vhost: "/", brokers: []Broker{{Host: "localhost", Port: 5672, User: "guest", Password: "guest"}}},
		{url: "rabbit://h//", vhost: "/", brokers: []Broker{{Host: "h", Port: 5672, User: "guest", Password: "guest"}}},
		{url: "amqp://h/", err: "oslo's amqp driver"},
		{url: "kombu://h/", err: `scheme "kombu" not supported`},
		{url: "h:5672", err: "not a URL"},
		{url: "rabbit://h:notaport/", err: "host 1: port"},
		{url: "rabbit://a,h:70000/", err: "host 2: port"},
		{url: "rabbit://u:p@[fd00::1/", err: "unterminated IPv6"},
		{url: "rabbit://h/?ssl=1", err: "query options"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			brokers, vhost, err := ParseTransportURL(tt.url)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(brokers, tt.brokers) || vhost != tt.vhost {
				t.Errorf("got %+v vhost %q, want %+v vhost %q", brokers, vhost, tt.brokers, tt.vhost)
			}
		})
	}
}

func TestParseTransportDefaults(t *testing.T) {
	got, err := ParseTransport(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, DefaultTransport()) {
		t.Errorf("got %+v, want oslo's defaults %+v", got, DefaultTransport())
	}
	want := DefaultTransport()
	if want.ControlExchange != "neutron" || want.ResponseTimeout != 60*time.Second || want.ResponseMaxTimeout != 600*time.Second ||
		want.Rabbit.TransientQueuesTTL != 1800*time.Second || want.Rabbit.HeartbeatTimeout != 60*time.Second {
		t.Errorf("defaults differ from oslo.messaging 14 / Neutron: %+v", want)
	}
}

func TestParseTransportOptions(t *testing.T) {
	got, err := ParseTransport(
		map[string]string{"transport_url": "rabbit://n:pw@a:5672,n:pw@b:5672/v", "control_exchange": "openstack",
			"rpc_response_timeout": "30", "rpc_response_max_timeout": "300", "debug": "true"},
		map[string]string{"ssl": "True", "ssl_ca_file": "/etc/ca.pem", "ssl_version": "TLSv1_2", "rabbit_login_method": "PLAIN",
			"rabbit_retry_interval": "2", "rabbit_retry_backoff": "3", "rabbit_interval_max": "20", "kombu_reconnect_delay": "0.5",
			"kombu_failover_strategy": "shuffle", "amqp_durable_queues": "true", "rabbit_ha_queues": "yes",
			"rabbit_transient_queues_ttl": "600", "rabbit_qos_prefetch_count": "10", "heartbeat_timeout_threshold": "0",
			"heartbeat_rate": "3", "heartbeat_in_pthread": "true", "rabbit_quorum_queue": "false", "direct_mandatory_flag": "true"})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultTransport()
	want.Brokers = []Broker{{Host: "a", Port: 5672, User: "n", Password: "pw"}, {Host: "b", Port: 5672, User: "n", Password: "pw"}}
	want.VirtualHost = "v"
	want.ControlExchange = "openstack"
	want.ResponseTimeout, want.ResponseMaxTimeout = 30*time.Second, 300*time.Second
	r := &want.Rabbit
	r.SSL, r.SSLCAFile, r.SSLVersion, r.LoginMethod = true, "/etc/ca.pem", "TLSv1_2", "PLAIN"
	r.RetryInterval, r.RetryBackoff, r.IntervalMax, r.ReconnectDelay = 2*time.Second, 3*time.Second, 20*time.Second, 500*time.Millisecond
	r.FailoverStrategy, r.DurableQueues, r.HAQueues = "shuffle", true, true
	r.TransientQueuesTTL, r.PrefetchCount, r.HeartbeatTimeout, r.HeartbeatRate = 600*time.Second, 10, 0, 3
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// TestParseTransportRefuses checks that every refusal names its section and option.
func TestParseTransportRefuses(t *testing.T) {
	tests := []struct {
		defaults, rabbit map[string]string
		want             string
	}{
		{defaults: map[string]string{"transport_url": "amqp://u:secret@h/"}, want: `[DEFAULT] transport_url = "amqp://u:***@h/"`},
		{defaults: map[string]string{"control_exchange": " "}, want: "[DEFAULT] control_exchange"},
		{defaults: map[string]string{"rpc_response_timeout": "soon"}, want: "[DEFAULT] rpc_response_timeout"},
		{defaults: map[string]string{"rpc_response_timeout": "120", "rpc_response_max_timeout": "60"}, want: "rpc_response_max_timeout (1m0s) is below"},
		{rabbit: map[string]string{"ssl": "maybe"}, want: "[oslo_messaging_rabbit] ssl"},
		{rabbit: map[string]string{"ssl_version": "SSLv3"}, want: "[oslo_messaging_rabbit] ssl_version"},
		{rabbit: map[string]string{"ssl_cert_file": "/c.pem"}, want: "ssl_cert_file and ssl_key_file must be set together"},
		{rabbit: map[string]string{"rabbit_login_method": "RABBIT-CR-DEMO"}, want: "[oslo_messaging_rabbit] rabbit_login_method"},
		{rabbit: map[string]string{"rabbit_quorum_queue": "true"}, want: "[oslo_messaging_rabbit] rabbit_quorum_queue"},
		{rabbit: map[string]string{"ssl_enforce_fips_mode": "true"}, want: "[oslo_messaging_rabbit] ssl_enforce_fips_mode"},
		{rabbit: map[string]string{"kombu_compression": "gzip"}, want: "[oslo_messaging_rabbit] kombu_compression"},
		{rabbit: map[string]string{"kombu_failover_strategy": "random"}, want: "[oslo_messaging_rabbit] kombu_failover_strategy"},
		{rabbit: map[string]string{"direct_mandatory_flag": "false"}, want: "[oslo_messaging_rabbit] direct_mandatory_flag"},
		{rabbit: map[string]string{"rabbit_transient_queues_ttl": "0"}, want: "[oslo_messaging_rabbit] rabbit_transient_queues_ttl"},
		{rabbit: map[string]string{"rabbit_qos_prefetch_count": "-1"}, want: "[oslo_messaging_rabbit] rabbit_qos_prefetch_count"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := ParseTransport(tt.defaults, tt.rabbit)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows a password: %v", err)
			}
		})
	}
	// All problems are reported at once.
	_, err := ParseTransport(map[string]string{"rpc_response_timeout": "x"}, map[string]string{"ssl": "x", "heartbeat_rate": "0"})
	for _, option := range []string{"rpc_response_timeout", "] ssl ", "heartbeat_rate"} {
		if err == nil || !strings.Contains(err.Error(), option) {
			t.Errorf("err = %v, want it to name %s", err, option)
		}
	}
}

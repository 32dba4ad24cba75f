package oslo

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Transport is what the oslo.messaging rabbit driver reads from Neutron's configuration:
// [DEFAULT] transport_url, control_exchange, rpc_response_timeout and
// rpc_response_max_timeout, and the [oslo_messaging_rabbit] options. ParseTransport fills it
// from the raw ini values; DefaultTransport holds oslo's defaults.
type Transport struct {
	// Brokers are the hosts of transport_url, tried in order (or shuffled, see
	// FailoverStrategy) when connecting and on failover.
	Brokers []Broker
	// VirtualHost is the path of transport_url; "/" when it is empty.
	VirtualHost string
	// ControlExchange is the topic exchange of every call and topic cast ("neutron").
	ControlExchange string
	// ResponseTimeout is rpc_response_timeout, the first timeout of every call method.
	ResponseTimeout time.Duration
	// ResponseMaxTimeout is rpc_response_max_timeout, the ceiling of the doubling back-off.
	ResponseMaxTimeout time.Duration
	Rabbit             RabbitOptions
}

// Broker is one host of transport_url.
type Broker struct {
	Host     string
	Port     int
	User     string
	Password string
}

// Address is host:port.
func (b Broker) Address() string { return net.JoinHostPort(b.Host, strconv.Itoa(b.Port)) }

// String is the broker without its password, for logs.
func (b Broker) String() string { return b.User + "@" + b.Address() }

// RabbitOptions are the [oslo_messaging_rabbit] options this client honours. Options it does
// not implement are refused by ParseTransport when set to anything but their default.
type RabbitOptions struct {
	// SSL (ssl) connects with TLS, configured by the SSL* fields.
	SSL bool
	// SSLCAFile (ssl_ca_file) verifies the broker's chain; without it the certificate is not
	// verified at all, as oslo does.
	SSLCAFile string
	// SSLCertFile and SSLKeyFile (ssl_cert_file, ssl_key_file) are the client certificate.
	SSLCertFile string
	SSLKeyFile  string
	// SSLVersion (ssl_version): "" negotiates; TLSv1_2 or TLSv1_3 pins that version.
	SSLVersion string
	// SSLVerifyHostname (ssl_enforce_hostname_verification) also checks the broker's host
	// name against its certificate when SSLCAFile is set.
	SSLVerifyHostname bool
	// LoginMethod (rabbit_login_method): AMQPLAIN (oslo's default), PLAIN or EXTERNAL.
	LoginMethod string
	// RetryInterval, RetryBackoff and IntervalMax (rabbit_retry_interval,
	// rabbit_retry_backoff, rabbit_interval_max) pace reconnection: after the n-th failed
	// round over all brokers the client waits min(RetryInterval + n*RetryBackoff,
	// IntervalMax).
	RetryInterval time.Duration
	RetryBackoff  time.Duration
	IntervalMax   time.Duration
	// ReconnectDelay (kombu_reconnect_delay) is the wait before reconnecting after the broker
	// cancelled a consumer (its queue was deleted).
	ReconnectDelay time.Duration
	// FailoverStrategy (kombu_failover_strategy): round-robin (in order) or shuffle.
	FailoverStrategy string
	// DurableQueues and AutoDelete (amqp_durable_queues, amqp_auto_delete) are the flags of
	// the control exchange and of the TOPIC and TOPIC.HOST queues.
	DurableQueues bool
	AutoDelete    bool
	// HAQueues (rabbit_ha_queues) adds x-ha-policy=all to every queue's arguments.
	HAQueues bool
	// TransientQueuesTTL (rabbit_transient_queues_ttl) is the x-expires of the reply and
	// fanout queues.
	TransientQueuesTTL time.Duration
	// PrefetchCount (rabbit_qos_prefetch_count): 0 is unlimited.
	PrefetchCount int
	// HeartbeatTimeout (heartbeat_timeout_threshold) is the AMQP heartbeat asked of the
	// broker; 0 takes the broker's. HeartbeatRate (heartbeat_rate) is accepted: the
	// AMQP library checks twice per interval.
	HeartbeatTimeout time.Duration
	HeartbeatRate    int
	// CancelOnFailover (enable_cancel_on_failover) sets x-cancel-on-ha-failover on consumers.
	CancelOnFailover bool
}

// DefaultTransport is oslo.messaging's and Neutron's defaults, with one broker on
// localhost:5672 (oslo's default transport_url "rabbit://").
func DefaultTransport() Transport {
	return Transport{
		Brokers:            []Broker{{Host: "localhost", Port: defaultPort, User: "guest", Password: "guest"}},
		VirtualHost:        "/",
		ControlExchange:    "neutron",
		ResponseTimeout:    60 * time.Second,
		ResponseMaxTimeout: 600 * time.Second,
		Rabbit: RabbitOptions{
			LoginMethod:        "AMQPLAIN",
			RetryInterval:      time.Second,
			RetryBackoff:       2 * time.Second,
			IntervalMax:        30 * time.Second,
			ReconnectDelay:     time.Second,
			FailoverStrategy:   "round-robin",
			TransientQueuesTTL: 1800 * time.Second,
			HeartbeatTimeout:   60 * time.Second,
			HeartbeatRate:      2,
		},
	}
}

const defaultPort = 5672

// Section names, for error messages.
const (
	sectionDefault = "DEFAULT"
	sectionRabbit  = "oslo_messaging_rabbit"
)

// ParseTransport builds the transport settings from the raw values of the [DEFAULT] and
// [oslo_messaging_rabbit] sections (option name → value, as an ini reader returns them).
// Options these maps hold that the messaging layer does not read are ignored, as oslo ignores
// other modules' options. An option it reads but cannot parse, or one it does not implement
// set to anything but its default, is an error naming the section and option; all such
// errors are reported together.
func ParseTransport(defaults, rabbit map[string]string) (Transport, error) {
	t := DefaultTransport()
	var errs []error
	fail := func(section, option, value, format string, a ...any) {
		errs = append(errs, fmt.Errorf("[%s] %s = %q: %s", section, option, value, fmt.Sprintf(format, a...)))
	}

	if v, ok := defaults["transport_url"]; ok && strings.TrimSpace(v) != "" {
		brokers, vhost, err := ParseTransportURL(v)
		if err != nil {
			fail(sectionDefault, "transport_url", redactURL(v), "%v", err)
		} else {
			t.Brokers, t.VirtualHost = brokers, vhost
		}
	}
	if v, ok := defaults["control_exchange"]; ok {
		if strings.TrimSpace(v) == "" {
			fail(sectionDefault, "control_exchange", v, "must not be empty")
		} else {
			t.ControlExchange = strings.TrimSpace(v)
		}
	}
	seconds(defaults, "rpc_response_timeout", 1, &t.ResponseTimeout, func(o, v, m string) { fail(sectionDefault, o, v, "%s", m) })
	seconds(defaults, "rpc_response_max_timeout", 1, &t.ResponseMaxTimeout, func(o, v, m string) { fail(sectionDefault, o, v, "%s", m) })
	if t.ResponseMaxTimeout < t.ResponseTimeout {
		errs = append(errs, fmt.Errorf("[%s] rpc_response_max_timeout (%s) is below rpc_response_timeout (%s)",
			sectionDefault, t.ResponseMaxTimeout, t.ResponseTimeout))
	}

	r := &t.Rabbit
	failR := func(o, v, m string) { fail(sectionRabbit, o, v, "%s", m) }
	boolean(rabbit, "ssl", &r.SSL, failR)
	str(rabbit, "ssl_ca_file", &r.SSLCAFile)
	str(rabbit, "ssl_cert_file", &r.SSLCertFile)
	str(rabbit, "ssl_key_file", &r.SSLKeyFile)
	str(rabbit, "ssl_version", &r.SSLVersion)
	boolean(rabbit, "ssl_enforce_hostname_verification", &r.SSLVerifyHostname, failR)
	switch r.SSLVersion {
	case "", "TLSv1_2", "TLSv1_3", "SSLv23", "TLS":
	default:
		failR("ssl_version", r.SSLVersion, "not supported (use TLSv1_2, TLSv1_3, or leave it empty to negotiate)")
	}
	if (r.SSLCertFile == "") != (r.SSLKeyFile == "") {
		errs = append(errs, fmt.Errorf("[%s] ssl_cert_file and ssl_key_file must be set together", sectionRabbit))
	}
	str(rabbit, "rabbit_login_method", &r.LoginMethod)
	switch r.LoginMethod {
	case "AMQPLAIN", "PLAIN", "EXTERNAL":
	default:
		failR("rabbit_login_method", r.LoginMethod, "not supported (AMQPLAIN, PLAIN or EXTERNAL)")
	}
	seconds(rabbit, "rabbit_retry_interval", 0, &r.RetryInterval, failR)
	seconds(rabbit, "rabbit_retry_backoff", 0, &r.RetryBackoff, failR)
	seconds(rabbit, "rabbit_interval_max", 1, &r.IntervalMax, failR)
	seconds(rabbit, "kombu_reconnect_delay", 0, &r.ReconnectDelay, failR)
	str(rabbit, "kombu_failover_strategy", &r.FailoverStrategy)
	if r.FailoverStrategy != "round-robin" && r.FailoverStrategy != "shuffle" {
		failR("kombu_failover_strategy", r.FailoverStrategy, "must be round-robin or shuffle")
	}
	boolean(rabbit, "amqp_durable_queues", &r.DurableQueues, failR)
	boolean(rabbit, "amqp_auto_delete", &r.AutoDelete, failR)
	boolean(rabbit, "rabbit_ha_queues", &r.HAQueues, failR)
	seconds(rabbit, "rabbit_transient_queues_ttl", 1, &r.TransientQueuesTTL, failR)
	integer(rabbit, "rabbit_qos_prefetch_count", 0, &r.PrefetchCount, failR)
	seconds(rabbit, "heartbeat_timeout_threshold", 0, &r.HeartbeatTimeout, failR)
	integer(rabbit, "heartbeat_rate", 1, &r.HeartbeatRate, failR)
	boolean(rabbit, "enable_cancel_on_failover", &r.CancelOnFailover, failR)

	// Implemented by no one here: refused unless left at their default.
	var b bool
	for _, o := range []struct{ name, why string }{
		{"rabbit_quorum_queue", "quorum queues are not implemented"},
		{"ssl_enforce_fips_mode", "FIPS mode is not implemented"},
	} {
		if boolean(rabbit, o.name, &b, failR) && b {
			failR(o.name, rabbit[o.name], o.why+"; remove the option or set it to false")
		}
	}
	if v := strings.TrimSpace(rabbit["kombu_compression"]); v != "" {
		failR("kombu_compression", v, "compression is not implemented; remove the option")
	}
	if b, ok := rabbit["direct_mandatory_flag"]; ok {
		var on bool
		if boolean(rabbit, "direct_mandatory_flag", &on, failR) && !on {
			failR("direct_mandatory_flag", b, "only true is supported (the option is deprecated)")
		}
	}
	return t, errors.Join(errs...)
}

// ParseTransportURL parses oslo.messaging's transport_url for the rabbit driver:
// rabbit://user:pass@host1:port1,user:pass@host2:port2/vhost. A host without credentials gets
// guest/guest, one without a port 5672; an empty path is the vhost "/". IPv6 hosts are
// written in brackets. Credentials and the vhost are URL-unescaped.
func ParseTransportURL(raw string) (brokers []Broker, vhost string, err error) {
	raw = strings.TrimSpace(raw)
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, "", errors.New("not a URL (want rabbit://user:pass@host:port/vhost)")
	}
	switch scheme {
	case "rabbit":
	case "amqp", "kafka":
		return nil, "", fmt.Errorf("scheme %s:// is oslo's %s driver, not implemented (want rabbit://)", scheme, scheme)
	default:
		return nil, "", fmt.Errorf("scheme %q not supported (want rabbit://)", scheme)
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		if rest[i] == '?' && rest[i+1:] != "" {
			return nil, "", fmt.Errorf("query options (%s) are not supported; use the [oslo_messaging_rabbit] options", rest[i+1:])
		}
		rest = rest[:i]
	}
	netloc, path, _ := strings.Cut(rest, "/")
	vhost, err = url.PathUnescape(path)
	if err != nil {
		return nil, "", fmt.Errorf("virtual host %q: %w", path, err)
	}
	if vhost == "" {
		vhost = "/"
	}
	for i, h := range strings.Split(netloc, ",") {
		if h == "" {
			continue
		}
		b, err := parseBroker(h)
		if err != nil {
			return nil, "", fmt.Errorf("host %d: %w", i+1, err)
		}
		brokers = append(brokers, b)
	}
	if len(brokers) == 0 {
		brokers = []Broker{{Host: "localhost", Port: defaultPort, User: "guest", Password: "guest"}}
	}
	return brokers, vhost, nil
}

func parseBroker(h string) (Broker, error) {
	b := Broker{User: "guest", Password: "guest", Port: defaultPort}
	if at := strings.LastIndexByte(h, '@'); at >= 0 { // a password may hold '@'
		creds, host := h[:at], h[at+1:]
		user, pass, hasPass := strings.Cut(creds, ":")
		var err error
		if b.User, err = url.PathUnescape(user); err != nil {
			return b, fmt.Errorf("user name: %w", err)
		}
		if hasPass {
			if b.Password, err = url.PathUnescape(pass); err != nil {
				return b, errors.New("password: bad escape")
			}
		} else {
			b.Password = ""
		}
		h = host
	}
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return b, fmt.Errorf("%q: unterminated IPv6 address", h)
		}
		b.Host, h = h[1:end], h[end+1:]
		if h != "" && !strings.HasPrefix(h, ":") {
			return b, fmt.Errorf("junk %q after the IPv6 address", h)
		}
		h = strings.TrimPrefix(h, ":")
	} else {
		host, port, _ := strings.Cut(h, ":")
		b.Host, h = host, port
	}
	if b.Host == "" {
		b.Host = "localhost"
	}
	if h != "" {
		p, err := strconv.Atoi(h)
		if err != nil || p < 1 || p > 65535 {
			return b, fmt.Errorf("port %q is not a number in 1..65535", h)
		}
		b.Port = p
	}
	return b, nil
}

// redactURL hides the passwords of a transport_url for error messages.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(unparsable URL)"
	}
	netloc, path, hasPath := strings.Cut(rest, "/")
	hosts := strings.Split(netloc, ",")
	for i, h := range hosts {
		if at := strings.LastIndexByte(h, '@'); at >= 0 {
			if user, _, hasPass := strings.Cut(h[:at], ":"); hasPass {
				hosts[i] = user + ":***" + h[at:]
			}
		}
	}
	out := scheme + "://" + strings.Join(hosts, ",")
	if hasPath {
		out += "/" + path
	}
	return out
}

func str(m map[string]string, name string, into *string) {
	if v, ok := m[name]; ok {
		*into = strings.TrimSpace(v)
	}
}

// boolean parses oslo.config's boolean spellings; it reports whether the option was set and
// valid.
func boolean(m map[string]string, name string, into *bool, fail func(option, value, msg string)) bool {
	v, ok := m[name]
	if !ok {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "on", "yes":
		*into = true
	case "false", "0", "off", "no":
		*into = false
	default:
		fail(name, v, "not a boolean (true or false)")
		return false
	}
	return true
}

func integer(m map[string]string, name string, min int, into *int, fail func(option, value, msg string)) {
	v, ok := m[name]
	if !ok {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < min {
		fail(name, v, fmt.Sprintf("not an integer >= %d", min))
		return
	}
	*into = n
}

// seconds parses a number of seconds (oslo's IntOpt or FloatOpt) into a duration.
func seconds(m map[string]string, name string, min float64, into *time.Duration, fail func(option, value, msg string)) {
	v, ok := m[name]
	if !ok {
		return
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < min || f > 1e7 {
		fail(name, v, fmt.Sprintf("not a number of seconds >= %g", min))
		return
	}
	*into = time.Duration(f * float64(time.Second))
}

// tlsConfig builds the TLS settings oslo's rabbit driver would use for a broker.
func (r RabbitOptions) tlsConfig(b Broker) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: b.Host, MinVersion: tls.VersionTLS12}
	switch r.SSLVersion {
	case "TLSv1_2":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	case "TLSv1_3":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	}
	if r.SSLCertFile != "" {
		cert, err := tls.LoadX509KeyPair(r.SSLCertFile, r.SSLKeyFile)
		if err != nil {
			return nil, fmt.Errorf("[%s] ssl_cert_file/ssl_key_file: %w", sectionRabbit, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if r.SSLCAFile == "" {
		// oslo: without a CA file the broker's certificate is not checked.
		cfg.InsecureSkipVerify = true
		return cfg, nil
	}
	pem, err := os.ReadFile(r.SSLCAFile)
	if err != nil {
		return nil, fmt.Errorf("[%s] ssl_ca_file: %w", sectionRabbit, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("[%s] ssl_ca_file %s: no PEM certificate in it", sectionRabbit, r.SSLCAFile)
	}
	cfg.RootCAs = roots
	if r.SSLVerifyHostname {
		return cfg, nil
	}
	// The chain is verified, the host name is not (oslo's default).
	cfg.InsecureSkipVerify = true
	cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("broker sent no certificate")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, der := range raw {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return fmt.Errorf("broker certificate: %w", err)
			}
			certs[i] = c
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
		return err
	}
	return cfg, nil
}

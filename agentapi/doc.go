// Package agentapi is the running agent's read-only API: the documents it serves (typed,
// JSON), the server side over the agent's state, the client the CLI uses, and the agent's
// one HTTP server that carries this API on a unix socket ([dvrflow] api_socket, mode 0600)
// and the metrics listener ([dvrflow] metrics_address) beside it.
//
// Paths (GET or HEAD only; anything else is 405):
//
//	/v1/status                    the agent's view: host, mode, bridges, bound ports and
//	                              their local VLANs, the last reconcile and its phases,
//	                              ports waiting for an ofport, Problems, repairs, config
//	/v1/desired-flows[?bridge=BR] the desired flows of the last reconcile per bridge, in
//	                              ovs-ofctl dump-flows text with their cookies
//
// Errors are JSON too: {"error": "..."} with the HTTP status.
//
// Concurrency: the agent's state belongs to its event loop. A [Publisher] takes a snapshot
// on that goroutine after every reconcile ([Publisher.Reconciled], the agent's
// OnConverged) and publishes it through an atomic pointer; requests read the latest
// snapshot and never touch the agent. The snapshot keeps the binding, model, problems and
// desired flows by reference (the agent makes new ones and never modifies those it handed
// out), so publishing costs the event loop time in proportion to the bridges only; the
// documents are rendered on the request's goroutine. Only the connection states are read
// live, from accessors that are safe on any goroutine.
package agentapi

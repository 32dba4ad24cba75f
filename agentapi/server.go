package agentapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/dvrflow/dvrflow/flows"
)

// Mount registers the API's paths on mux: /v1/status, /v1/desired-flows, and a JSON 404
// for every other path under /v1/. Only GET and HEAD are served. conns gives the live
// connection states.
func (p *Publisher) Mount(mux *http.ServeMux, conns Connections) {
	mux.Handle("/v1/", readOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such path %s (the API serves %s and %s)", r.URL.Path, StatusPath, DesiredFlowsPath))
	})))
	mux.Handle(StatusPath, readOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serveStatus(w, r, conns)
	})))
	mux.Handle(DesiredFlowsPath, readOnly(http.HandlerFunc(p.serveDesiredFlows)))
}

// Handler is a mux with only the API mounted (see Mount).
func (p *Publisher) Handler(conns Connections) http.Handler {
	mux := http.NewServeMux()
	p.Mount(mux, conns)
	return mux
}

// readOnly refuses every method but GET and HEAD.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: the agent's API is read-only", r.Method))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// latest returns the latest snapshot, or answers 503 and returns nil before the first.
func (p *Publisher) latest(w http.ResponseWriter) *snapshot {
	s := p.current.Load()
	if s == nil {
		writeError(w, http.StatusServiceUnavailable, "the agent is starting: no state published yet")
	}
	return s
}

// checkQuery refuses query parameters the path does not take.
func checkQuery(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for name := range r.URL.Query() {
		if !slices.Contains(allowed, name) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q", name))
			return false
		}
	}
	return true
}

func (p *Publisher) serveStatus(w http.ResponseWriter, r *http.Request, conns Connections) {
	if !checkQuery(w, r) {
		return
	}
	s := p.latest(w)
	if s == nil {
		return
	}
	status := s.statusDocument()
	if conns != nil {
		status.OVSDBConnected = conns.OVSDBConnected()
		for i := range status.Bridges {
			status.Bridges[i].OpenFlowConnected = conns.BridgeConnected(status.Bridges[i].Name)
		}
	}
	writeJSON(w, http.StatusOK, status)
}

func (p *Publisher) serveDesiredFlows(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "bridge") {
		return
	}
	s := p.latest(w)
	if s == nil {
		return
	}
	if !s.status.Synced {
		writeError(w, http.StatusServiceUnavailable, "the agent has not finished its first reconcile yet: no desired flows")
		return
	}
	var bridges []string
	for _, b := range s.status.Bridges {
		bridges = append(bridges, b.Name)
	}
	if want := r.URL.Query()["bridge"]; len(want) > 0 {
		for _, br := range want {
			if !slices.Contains(bridges, br) {
				writeError(w, http.StatusNotFound, fmt.Sprintf("%s is not a bridge this agent manages (%s)", br, strings.Join(bridges, ", ")))
				return
			}
		}
		bridges = slices.DeleteFunc(bridges, func(br string) bool { return !slices.Contains(want, br) })
	}
	doc := DesiredFlows{ReconciledAt: s.reconciledAt, Bridges: make([]BridgeFlows, 0, len(bridges))}
	for _, br := range bridges {
		doc.Bridges = append(doc.Bridges, bridgeFlows(br, s.desired[br], s.tableNames[br]))
	}
	writeJSON(w, http.StatusOK, doc)
}

// bridgeFlows renders a bridge's flows in dump order, sorting a copy (the snapshot's slice
// is shared and read-only).
func bridgeFlows(bridge string, desired []flows.Flow, tableNames map[uint8]string) BridgeFlows {
	sorted := slices.Clone(desired)
	flows.Sort(sorted)
	out := BridgeFlows{Bridge: bridge, Flows: make([]DesiredFlow, len(sorted))}
	for i, f := range sorted {
		out.Flows[i] = DesiredFlow{Table: f.Table, TableName: tableNames[f.Table], Priority: f.Priority,
			Cookie: fmt.Sprintf("%#x", f.Cookie), Category: cookieCategory(f.Cookie), Text: f.String()}
	}
	return out
}

// cookieCategory names the generator a cookie of ours names; "foreign" otherwise.
func cookieCategory(cookie uint64) string {
	if !flows.IsOurs(cookie) {
		return "foreign"
	}
	return flows.CookieCategory(cookie).String()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // flows' "->" as is
	// An error here means the client went away: nothing to do.
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorDocument{Error: msg})
}

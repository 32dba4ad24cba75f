package neutron

// NeutronAgentPid is the pid of the host's running Neutron agent (its main process; the
// privsep daemons are its children), 0 when none runs: for reading its CPU time.
func (h *AgentHost) NeutronAgentPid() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.agent == nil || !h.agent.alive() {
		return 0
	}
	return h.agent.pid
}

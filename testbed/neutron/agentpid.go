package neutron

// NeutronAgentPids are the processes of the host's running Neutron agent (its process
// group: the agent, its privsep daemons and the commands it runs), none when it does not
// run: for reading its CPU time.
func (h *AgentHost) NeutronAgentPids() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.agent.running() {
		return nil
	}
	return groupMembers(h.agent.pid)
}

// ServerPids are the processes of neutron-server (its process group: the parent, the API
// and RPC workers), none when it does not run: for reading its CPU time.
func (c *Cloud) ServerPids() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.server.running() {
		return nil
	}
	return groupMembers(c.server.pid)
}

package netback

// SetNATHubWaits sets a hub's bound of its guests' SYNs waiting all
// together (one user's VMs half of it, the users' but root and the
// hub's own three quarters) for the hubs started until the returned
// function restores it.
func SetNATHubWaits(k int) (restore func()) {
	old := natHubLimits
	natHubLimits.waits = k
	return func() { natHubLimits = old }
}

// HubBudgetWaits is how many of its guests' SYNs h's budget counts
// waiting.
func HubBudgetWaits(h *Hub) int {
	n := h.gw.nat
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.budget.waits.held
}

// SetNATHubBuffered sets how many of a hub's guests' TCP connections
// have the larger buffers all together (one user's VMs half of them, the
// users' but root and the hub's own three quarters) for the hubs started
// until the returned function restores it.
func SetNATHubBuffered(k int) (restore func()) {
	old := natHubLimits
	natHubLimits.buffered = k
	return func() { natHubLimits = old }
}

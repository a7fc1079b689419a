package guests

import (
	"bytes"
	"sync"
)

// Console collects what a guest prints: the VMM writes it from its own
// goroutines while a test reads it.
type Console struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Write(p)
}

// String returns everything written so far.
func (c *Console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

package virtiotest

import "sync"

// Link is the link half of a test network backend (virtio/net's
// LinkBackend): embedded beside a backend, it lets a test take the link
// down and up, as a shared network's goes while its daemon is gone.
type Link struct {
	mu     sync.Mutex
	notify func(up bool)
}

// SetLinkNotify keeps the device's function for link changes.
func (l *Link) SetLinkNotify(notify func(up bool)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notify = notify
}

// Set tells the device the link is up or down, outside Link's lock, as a
// LinkBackend must. The device must have asked for notices first.
func (l *Link) Set(up bool) {
	l.mu.Lock()
	n := l.notify
	l.mu.Unlock()
	n(up)
}

package vmm_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

// blockingLog is a Config.Log whose Write blocks until release is closed,
// keeping what it was given.
type blockingLog struct {
	release chan struct{}
	mu      sync.Mutex
	got     strings.Builder
}

func (l *blockingLog) Write(p []byte) (int, error) {
	<-l.release
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got.Write(p)
	return len(p), nil
}

func (l *blockingLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got.String()
}

// TestNewReturnsWhileLogBlocks: New and Restore with Verbose wait for
// Config.Log to take what they logged at most a second, as a stop does:
// they waited for as long as Write blocked, and their caller, having no
// Machine yet, could not Close it. What they logged stays queued for
// Log, which gets it once Write returns.
func TestNewReturnsWhileLogBlocks(t *testing.T) {
	needKVM(t)
	snap, _, _ := snapshotCounter(t, vmm.Config{}, "")
	for _, op := range []string{"New", "Restore"} {
		t.Run(op, func(t *testing.T) {
			lg := &blockingLog{release: make(chan struct{})}
			released := false
			release := func() {
				if !released {
					released = true
					close(lg.release)
				}
			}
			defer release()
			type result struct {
				m   *vmm.Machine
				err error
			}
			built := make(chan result, 1)
			go func() {
				cfg := vmm.Config{Verbose: true, Log: lg, Console: &guests.Console{}}
				var r result
				if op == "New" {
					cfg.Kernel, cfg.KernelImage = "demo", guests.Demo
					r.m, r.err = vmm.New(cfg)
				} else {
					r.m, r.err = vmm.Restore(cfg, snap)
				}
				built <- r
			}()
			var r result
			select {
			case r = <-built:
			case <-time.After(30 * time.Second):
				release()
				if r := <-built; r.m != nil {
					r.m.Close()
				}
				t.Fatalf("%s did not return while Config.Log's Write blocked", op)
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			release()
			if err := r.m.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if lg.text() == "" {
				t.Errorf("Log got none of what %s logged once its Write returned", op)
			}
		})
	}
}

package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// smolvmm net with --socket or --leases in a directory it may not write
// says so before it starts, naming the flag to change, not with the
// temporary socket's name or the lock's.
func TestNetUnwritableDir(t *testing.T) {
	ro := openTempDir(t, false) // unreadable_test.go: mode 0755, not the user's
	rw := openTempDir(t, true)
	tests := []struct {
		name string
		args []string
		want string
		not  string
	}{
		{"--socket", []string{"net", "--socket", filepath.Join(ro, "x.sock")},
			"--socket " + filepath.Join(ro, "x.sock") + ": cannot listen there: directory " + ro + ": permission denied (pick another --socket, or let uid ", "mkdir"},
		{"--leases", []string{"net", "--socket", filepath.Join(rw, "x.sock"), "--leases", filepath.Join(ro, "x.leases")},
			"--leases " + filepath.Join(ro, "x.leases") + ": cannot keep them there: directory " + ro + ": permission denied (pick another --leases, or let uid ", "lock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := asUnprivileged(t, tt.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// A network that starts would run until stopped.
			timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
			defer timer.Stop()
			err := cmd.Wait()
			if s := stderr.String(); err == nil || !strings.Contains(s, tt.want) || strings.Contains(s, tt.not) {
				t.Errorf("smolvmm %s: %v, stderr:\n%s\nwant a failure saying %q, without %q", strings.Join(tt.args, " "), err, s, tt.want, tt.not)
			}
		})
	}
}

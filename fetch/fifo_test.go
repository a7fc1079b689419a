package fetch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCacheFIFO: a FIFO in the cache, in place of a file, a digest list
// or a partial download, is refused naming it, at once; Fetch opened it
// to read or write and waited, deaf to signals, for a writer or reader
// that never came, holding the release's lock.
func TestCacheFIFO(t *testing.T) {
	for _, tc := range []struct {
		name string
		rel  string // path of the FIFO under the release's directory
	}{
		{"cached set", "sets/rescue.tgz"},
		{"cached kernel", "kernel/" + KernelName},
		{"cached list", "sets/SHA512"},
		{"partial download", "sets/rescue.tgz.part"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, f := setup(t)
			dir, _ := f.ReleaseDir("9.3", "i386")
			fifo := filepath.Join(dir, tc.rel)
			if err := os.MkdirAll(filepath.Dir(fifo), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			// Bounds only the mirror's part: an open of the FIFO, the
			// defect, does not see the context.
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := f.Fetch(ctx, "9.3", "i386", "rescue")
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			// A loaded host's Fetch can take seconds to reach the
			// FIFO; a hung open waits for ever.
			case <-time.After(20 * time.Second):
				// Free the hung open: a reader and a writer.
				go func() {
					if r, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
						time.Sleep(time.Second)
						r.Close()
					}
				}()
				err = <-done
				t.Fatalf("Fetch hung on the FIFO %s (then: %v)", fifo, err)
			}
			if err == nil || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "a FIFO") || !strings.Contains(err.Error(), "remove it") {
				t.Errorf("Fetch = %v, want the FIFO %s refused, advising its removal", err, fifo)
			}
			if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
				t.Errorf("the FIFO is gone or changed (%v): it was the user's to remove", err)
			}
		})
	}
}

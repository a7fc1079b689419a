package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// On a network file system a temporary no lock holds here may be a live
// writer's on another host (NFS local_lock, CIFS before Linux 5.5): the
// next Write removed it, and the writer's rename then failed. It is now
// kept there, and removed elsewhere.
func TestWriteKeepsTemporariesOnNetworkFS(t *testing.T) {
	for _, network := range []bool{true, false} {
		dir := t.TempDir()
		saved := networkFS
		networkFS = func(d string) bool {
			if filepath.Clean(d) != dir {
				t.Errorf("networkFS(%q), want %q", d, dir)
			}
			return network
		}
		other := filepath.Join(dir, ".x.tmp-3")
		if err := os.WriteFile(other, []byte("half of an image"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := WriteFile(filepath.Join(dir, "x"), []byte("new"), 0o644)
		networkFS = saved
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(other); (err == nil) != network {
			t.Errorf("network file system %v: another host's temporary kept %v, want %v", network, err == nil, network)
		}
	}
}

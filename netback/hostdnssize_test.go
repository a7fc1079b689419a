package netback

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestLongHostsFileReadWhole: a hosts file of a few MiB, as ad-blocking
// lists are, is read whole, by ReadHostFiles (a broker's, a daemon's)
// and by a resolver at its start (a VMM's): a name on its last line is
// answered from it, not asked of the nameservers past the block.
func TestLongHostsFileReadWhole(t *testing.T) {
	hostFilesIn(t, t.TempDir()) // hostdnsreread_test.go
	var b strings.Builder
	for i := 0; b.Len() < 2<<20; i++ {
		fmt.Fprintf(&b, "0.0.0.0 ads%d.example.test\n", i)
	}
	b.WriteString("0.0.0.0 last.example.test\n")
	if err := os.WriteFile(hostsPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	f := ReadHostFiles(true).Hosts
	if f.Cut || string(f.Content) != b.String() {
		t.Errorf("ReadHostFiles: %d bytes, cut %v; want the %d bytes whole", len(f.Content), f.Cut, b.Len())
	}
	r := newHostResolver(false)
	if got := r.config().hosts[hostKey("last.example.test")]; len(got) != 1 || got[0].IP.String() != "0.0.0.0" {
		t.Errorf("the last line's name: %v, want 0.0.0.0 from the hosts file", got)
	}
}

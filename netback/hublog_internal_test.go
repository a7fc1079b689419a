package netback

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// A hello's text reaches the hub's log only as one inert line: a forward
// or MAC carrying a newline and a line of the hub's own forged a "joined"
// line, and an escape sequence (ESC[2J) acted on the terminal of whoever
// read the log.
func TestHubLogsHostileHelloOnOneLine(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(format, args...))
	}
	h, err := NewHub(HubConfig{Socket: filepath.Join(testsock.Dir(t), "n.sock"), Logf: logf})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	forged := "\nsmolvmm net: 10:59:59 VM 52:54:00:00:00:09 joined as 10.0.2.99\x1b[2J"
	tests := []struct {
		name  string
		hello hubHello
	}{
		{"forward with unbalanced brackets", hubHello{MAC: "52:54:00:00:01:01", Forwards: []string{"[" + forged + ":1:2"}}},
		{"forward with a bad address", hubHello{MAC: "52:54:00:00:01:02", Forwards: []string{"[" + forged + "]:1:2"}}},
		{"MAC", hubHello{MAC: "52:54" + forged}},
		{"query", hubHello{Query: "vms" + forged}},
	}
	for _, tt := range tests {
		mu.Lock()
		lines = nil
		mu.Unlock()
		c, err := net.Dial("unix", h.Socket())
		if err != nil {
			t.Fatal(err)
		}
		var ans hubAnswer
		var status byte
		if err = writeHubMessage(c, 0, tt.hello); err == nil {
			_, status, err = readHubMessage(c, &ans)
		}
		c.Close()
		if err != nil || status == 0 {
			t.Fatalf("%s: status %d, %v: want a refusal", tt.name, status, err)
		}
		mu.Lock()
		got := lines
		mu.Unlock()
		if len(got) != 1 || !strings.HasPrefix(got[0], "refused a VM: ") {
			t.Errorf("%s: logged %q, want one refusal", tt.name, got)
		}
		for _, l := range got {
			if strings.ContainsFunc(l, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Errorf("%s: logged %q, with a control character", tt.name, l)
			}
		}
	}
}

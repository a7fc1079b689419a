package netback

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestResolveZones: a zoned nameserver's zone becomes its interface's
// index: a number is one already, a name is found in the zones given
// (HostFiles.Zones), then through the lookup when there is one; one
// found nowhere is left out and said why; others pass unchanged.
func TestResolveZones(t *testing.T) {
	zones := map[string]int{"wlp2s0": 3}
	lookup := func(name string) (int, error) {
		if name == "vpn0" {
			return 9, nil
		}
		return 0, errors.New("no such network interface")
	}
	tests := []struct {
		server  string
		lookup  bool
		kept    bool
		index   int // 0: not zoned
		unzoned string
	}{
		{"192.0.2.1:53", false, true, 0, ""},
		{"[2001:db8::1]:53", false, true, 0, ""},
		{"[fe80::1%wlp2s0]:53", false, true, 3, ""},
		{"[fe80::1%wlp2s0]:53", true, true, 3, ""},
		{"[fe80::1%7]:53", false, true, 7, ""},
		{"[fe80::1%0]:53", true, false, 0, `its zone 0 is no interface index`},
		{"[fe80::1%vpn0]:53", true, true, 9, ""},
		{"[fe80::1%vpn0]:53", false, false, 0, `its zone "vpn0" names no interface`},
		{"[fe80::1%nosuchif0]:53", true, false, 0, `its zone "nosuchif0": no such network interface`},
	}
	for _, tt := range tests {
		r := &hostConf{}
		var lk func(string) (int, error)
		if tt.lookup {
			lk = lookup
		}
		kept := r.resolveZones([]string{tt.server}, zones, lk)
		if got := slices.Contains(kept, tt.server); got != tt.kept {
			t.Errorf("%s, lookup %v: kept %v, want %v", tt.server, tt.lookup, got, tt.kept)
		}
		sa, zoned := r.zoned[tt.server]
		switch {
		case zoned != (tt.index != 0):
			t.Errorf("%s, lookup %v: zoned %v, want %v", tt.server, tt.lookup, zoned, tt.index != 0)
		case zoned && (int(sa.ZoneId) != tt.index || sa.Port != 53):
			t.Errorf("%s, lookup %v: zone index %d port %d, want %d and 53", tt.server, tt.lookup, sa.ZoneId, sa.Port, tt.index)
		}
		var want []string
		if tt.unzoned != "" {
			want = []string{fmt.Sprintf("nameserver %s of %s left out: %s", tt.server, resolvConfPath, tt.unzoned)}
		}
		if !slices.Equal(r.unzoned, want) {
			t.Errorf("%s, lookup %v: said %q, want %q", tt.server, tt.lookup, r.unzoned, want)
		}
	}
}

// TestReadHostFilesZones: with their content, the host's files come with
// the index of each interface resolv.conf's nameservers name as their
// zone, read from /sys/class/net: a number is no name, and a name that
// is no plain interface name (a path, "." or "..", longer than IFNAMSIZ
// allows) is not looked up, nor is one past MaxHostZones.
func TestReadHostFilesZones(t *testing.T) {
	defer func(s string) { sysClassNet = s }(sysClassNet)
	dir := t.TempDir()
	hostFilesIn(t, dir) // hostdnsreread_test.go
	sys := filepath.Join(dir, "class", "net")
	for path, index := range map[string]string{
		"eth9":                   "9\n",
		"garbled0":               "nine\n",
		"zero0":                  "0\n",
		"a/b":                    "8\n", // zone "a/b": a path
		".":                      "5\n", // sys itself
		"..":                     "6\n", // sys's parent
		"sixteen-bytes-ab":       "10\n",
		"fifteen-bytes-a":        "11\n",
		"3":                      "12\n", // a number: the index itself
		"../../../../etc/passwd": "13\n",
	} {
		p := filepath.Join(sys, path, "ifindex")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(index), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	for _, zone := range []string{"eth9", "eth9", "garbled0", "zero0", "a/b", ".", "..", "sixteen-bytes-ab", "fifteen-bytes-a", "3", "nosuchif0", "../../../../etc/passwd"} {
		fmt.Fprintf(&b, "nameserver fe80::1%%%s\n", zone)
	}
	b.WriteString("nameserver 192.0.2.53\nnameserver 2001:db8::1\n")
	if err := os.WriteFile(resolvConfPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sysClassNet = sys
	want := map[string]int{"eth9": 9, "fifteen-bytes-a": 11}
	if got := ReadHostFiles(true).Zones; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("zones %v, want %v", got, want)
	}
	if got := ReadHostFiles(false).Zones; got != nil {
		t.Errorf("without content: zones %v, want none", got)
	}

	// More zones than MaxHostZones: the first are read.
	b.Reset()
	want = map[string]int{}
	for i := range MaxHostZones + 3 {
		name := fmt.Sprintf("if%d", i)
		p := filepath.Join(sys, name, "ifindex")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf("%d\n", 100+i)), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "nameserver fe80::1%%%s\n", name)
		if i < MaxHostZones {
			want[name] = 100 + i
		}
	}
	if err := os.WriteFile(resolvConfPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ReadHostFiles(true).Zones; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%d zones: %v, want %v", MaxHostZones+3, got, want)
	}

	// The host's own /sys: lo, as the net package finds it.
	sysClassNet = "/sys/class/net"
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no interface lo: %v", err)
	}
	if err := os.WriteFile(resolvConfPath, []byte("nameserver fe80::1%lo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ReadHostFiles(true).Zones; fmt.Sprint(got) != fmt.Sprint(map[string]int{"lo": lo.Index}) {
		t.Errorf("the host's lo: zones %v, want lo:%d", got, lo.Index)
	}
}

// TestContainedHubZonesFromReadHostFiles: a contained hub, whose filter
// refuses the netlink socket the net package finds an interface through
// (and kills the daemon), finds a zoned nameserver's interface in the
// zones ReadHostFiles gives with the files when resolv.conf changed, and
// never looks one up itself; a zone neither given nor a number leaves
// its nameserver out, logged, and the others are asked.
func TestContainedHubZonesFromReadHostFiles(t *testing.T) {
	hostFilesIn(t, t.TempDir()) // hostdnsreread_test.go
	defer func(f func(string) (int, error)) { interfaceIndex = f }(interfaceIndex)
	if err := os.WriteFile(resolvConfPath, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	contained := false // NewHub has returned: the filter would be on
	interfaceIndex = func(name string) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if contained {
			t.Errorf("the interface %q looked up through the net package under the filter", name)
		}
		return 0, errors.New("no such network interface")
	}
	start := ReadHostFiles(false)
	served := start
	read := func(content bool) (HostFiles, error) {
		mu.Lock()
		defer mu.Unlock()
		f := served
		if !content {
			f.Hosts.Content, f.ResolvConf.Content, f.Zones = nil, nil, nil
		}
		return f, nil
	}
	var logged []string
	h := startContainedHub(t, read, func(format string, args ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(format, args...))
		mu.Unlock()
	})
	defer h.Close()
	r := h.gw.resolver
	mu.Lock()
	contained = true
	// NetworkManager writes a zoned nameserver, of a wireless
	// interface the broker found, one gone, and one by its index.
	served.ResolvConf = HostFile{
		Stamp:   HostFileStamp{Present: true, Ino: start.ResolvConf.Stamp.Ino + 1, Size: 99},
		Content: []byte("nameserver fe80::1%wlp2s0\nnameserver fe80::2%gone0\nnameserver fe80::3%4\n"),
	}
	served.Zones = map[string]int{"wlp2s0": 3}
	mu.Unlock()
	lookedLongAgo(r) // hostdnsreread_test.go
	c := r.config()
	if got, want := strings.Join(c.servers, ","), "[fe80::1%wlp2s0]:53,[fe80::3%4]:53"; got != want {
		t.Errorf("servers %s, want %s", got, want)
	}
	for server, index := range map[string]uint32{"[fe80::1%wlp2s0]:53": 3, "[fe80::3%4]:53": 4} {
		if sa := c.zoned[server]; sa == nil || sa.ZoneId != index {
			t.Errorf("%s: socket address %+v, want the zone index %d", server, sa, index)
		}
	}
	want := fmt.Sprintf(`DNS: nameserver [fe80::2%%gone0]:53 of %s left out: its zone "gone0" names no interface`, resolvConfPath)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(logged, want) {
		t.Errorf("log %q; want a line %q", logged, want)
	}
}

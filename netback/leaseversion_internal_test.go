package netback

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A table saved now is version 2: builds from before the lease's owner
// ("uid"), "connected" and kept leases read version 1 and dropped those
// fields on their next save, handing each MAC (and its address) to the
// next user who joined with it; they refuse version 2. Version 1 files
// still load as they did (those written since the owner fields with
// them, older ones without: no user recorded), and are saved as version
// 2, their leases as they were.
func TestLeaseFileVersions(t *testing.T) {
	// Each body follows `"version": N,` in the file, spelled as save
	// indents it.
	const owned = `
  "leases": [
    {
      "mac": "52:54:00:00:00:01",
      "addr": "10.0.2.15",
      "seen": "2026-12-03T19:00:00Z",
      "uid": 65534,
      "connected": true
    },
    {
      "mac": "52:54:00:00:00:02",
      "addr": "10.0.2.16",
      "seen": "2026-12-03T19:05:00Z",
      "privileged": [
        "tcp:127.0.0.1:80:80"
      ],
      "privileged_uid": 1000,
      "uid": 1000
    },
    {
      "mac": "52:54:00:00:00:03",
      "seen": "2026-12-03T18:00:00Z",
      "uid": 1000
    }
  ]
}
`
	const unowned = `
  "leases": [
    {
      "mac": "52:54:00:00:00:01",
      "addr": "10.0.2.15",
      "seen": "2026-12-03T19:00:00Z"
    }
  ]
}
`
	type want struct {
		uid       int // -1: none recorded
		addr      string
		connected bool
	}
	mac := func(b byte) net.HardwareAddr { return net.HardwareAddr{0x52, 0x54, 0, 0, 0, b} }
	ownedWant := map[byte]want{1: {65534, "10.0.2.15", true}, 2: {1000, "10.0.2.16", false}, 3: {1000, "", false}}
	tests := []struct {
		name    string
		version string
		body    string
		want    map[byte]want
	}{
		{"version 1 with owners", "1", owned, ownedWant},
		{"version 1 from before owners", "1", unowned, map[byte]want{1: {-1, "10.0.2.15", false}}},
		{"version 2", "2", owned, ownedWant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "n.leases")
			if err := os.WriteFile(path, []byte("{\n  \"version\": "+tt.version+","+tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := loadLeases(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			if len(s.byMAC) != len(tt.want) {
				t.Errorf("%d leases, want %d", len(s.byMAC), len(tt.want))
			}
			for b, w := range tt.want {
				uid, addr, ok := s.owner(mac(b))
				if !ok {
					uid = -1
					addr, _ = s.lookup(mac(b))
				}
				got := want{uid: uid, connected: s.byMAC[mac(b).String()] != nil && s.byMAC[mac(b).String()].Connected}
				if addr.IsValid() {
					got.addr = addr.String()
				}
				if got != w {
					t.Errorf("lease of %s: %+v, want %+v", mac(b), got, w)
				}
			}
			if err := s.save(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if want := "{\n  \"version\": 2," + tt.body; string(b) != want {
				t.Errorf("saved\n%s\nwant\n%s", b, want)
			}
		})
	}
}

// A table saved from nothing is version 2 too.
func TestSaveLeasesVersion2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.leases")
	s, err := loadLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	p, ok := s.plan(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, nil, time.Time{})
	if !ok {
		t.Fatal("no address")
	}
	p.uid = 1000
	s.commit(p, time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC))
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{
  "version": 2,
  "leases": [
    {
      "mac": "52:54:00:00:00:01",
      "addr": "10.0.2.15",
      "seen": "2026-12-03T19:00:00Z",
      "uid": 1000,
      "connected": true
    }
  ]
}
`
	if string(b) != want {
		t.Errorf("saved\n%s\nwant\n%s", b, want)
	}
}

// A lease file of a version above 2 is refused as one of a newer layout
// (ErrLeasesNewer, for which the CLI advises), with no advice to correct
// it, and left as it was: read as if it were of this layout, a field
// this code does not know (such as a new owner binding) would be
// dropped by the next save. A version below 1
// is none any smolvmm wrote.
func TestLoadLeasesNewerVersion(t *testing.T) {
	tests := []struct {
		version string
		newer   bool
		want    string // after "lease file PATH: "
	}{
		{"3", true, `lease file of a newer layout: field "version" is 3, and 2 is the newest known here`},
		{"1000", true, `lease file of a newer layout: field "version" is 1000, and 2 is the newest known here`},
		{"0", false, `field "version": 0, want 1 or 2 (correct it, or remove it to start afresh)`},
		{"-1", false, `field "version": -1, want 1 or 2 (correct it, or remove it to start afresh)`},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "n.leases")
			content := `{"version":` + tt.version + `,"leases":[{"mac":"52:54:00:00:00:01","addr":"10.0.2.15","owner":{"uid":1000}}]}`
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := loadLeases(path)
			if err == nil {
				s.close()
				t.Fatalf("loaded %s", content)
			}
			if want := "lease file " + path + ": " + tt.want; err.Error() != want {
				t.Errorf("error\n%s\nwant\n%s", err, want)
			}
			if errors.Is(err, ErrLeasesNewer) != tt.newer {
				t.Errorf("errors.Is(err, ErrLeasesNewer) = %v, want %v", !tt.newer, tt.newer)
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != content {
				t.Errorf("file now %q (%v), want it as it was", b, err)
			}
			// The lock goes with the refusal: a file moved in its place
			// loads.
			if err := os.WriteFile(path, []byte(`{"version":2,"leases":[]}`), 0o600); err != nil {
				t.Fatal(err)
			}
			if s, err = loadLeases(path); err != nil {
				t.Fatalf("after moving it away: %v", err)
			}
			s.close()
		})
	}
}

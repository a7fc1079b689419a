package netbsdboot

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

// TestRndSeedByVersion: a seed whose SHA-1 digest is wrong is refused
// for a kernel before the entropy rewrite (rnd_seed in kern_rndq.c
// ignores it) and passed with a notice to one after it (entropy_seed in
// kern_entropy.c mixes the data in and credits no entropy); a seed of
// another size than rndsave_t is refused for both.
func TestRndSeedByVersion(t *testing.T) {
	bad := rndSeed(512)
	bad[0]++
	for _, tc := range []struct {
		name    string
		version uint32
		seed    []byte
		err     string // in the error; "" when it loads
		notice  bool   // a notice of the checksum
	}{
		{"9.1, good seed", 901000000, rndSeed(512), "", false},
		{"9.1, bad checksum", 901000000, bad, "bad seed checksum", false},
		{"9.1, short", 901000000, rndSeed(512)[:535], "bad seed length", false},
		{"9.99.1, bad checksum", 999000100, bad, "", true},
		{"10.0, good seed", 1000000000, rndSeed(512), "", false},
		{"10.0, bad checksum", 1000000000, bad, "", true},
		{"10.1, bad checksum", 1001000000, bad, "", true},
		{"10.0, short", 1000000000, rndSeed(512)[:535], "invalid seed length", false},
		{"10.0, long", 1000000000, append(rndSeed(512), 0), "is 537 bytes", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := stdKernel(1)
			k.Secs[1].Data = elftest.NetBSDNote(false, tc.version)
			img := k.Build()
			p, err := Load(newMem(), bytes.NewReader(img), int64(len(img)),
				Options{Modules: []Module{{Name: "seed", Data: tc.seed, Type: ModuleRnd}}})
			if tc.err != "" {
				if !errors.Is(err, ErrModule) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v; want ErrModule saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := slices.ContainsFunc(p.Notices, func(n string) bool {
				return strings.Contains(n, "module 0 (seed)") && strings.Contains(n, "invalid seed checksum") && strings.Contains(n, "no entropy")
			})
			if got != tc.notice {
				t.Errorf("notices %q: one of the seed's checksum is %v, want %v", p.Notices, got, tc.notice)
			}
		})
	}
}

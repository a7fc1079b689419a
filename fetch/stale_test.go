package fetch

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// TestStaleDigestFile: a cached digest file that lacks the kernel or a
// set asked for is fetched once more before the Fetch fails; once a
// mirror had served a SHA512 lacking a set, "unknown set" stayed after
// the mirror was fixed, for the well-formed cached copy was trusted.
func TestStaleDigestFile(t *testing.T) {
	good := testRelease()
	for _, tc := range []struct {
		name  string
		file  string // the digest file served wrong to the first Fetch
		wrong map[string][]byte
		first []string // sets of the first Fetch
		then  []string // sets of the Fetch after the mirror is fixed
	}{
		{"a set missing", fetchtest.SetsPath("9.3", "i386", "SHA512"), map[string][]byte{"rescue.tgz": testRescue}, []string{"rescue"}, []string{"rescue", "base"}},
		{"the kernel missing", fetchtest.KernelPath("9.3", "i386", "SHA512"), map[string][]byte{"netbsd-INSTALL.gz": []byte("x")}, []string{"rescue"}, []string{"rescue"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, f := setup(t)
			srv.SetFile(tc.file, fetchtest.DigestFile(tc.wrong))
			f.Fetch(context.Background(), "9.3", "i386", tc.first...) // caches the wrong list
			if strings.Contains(tc.file, "/kernel/") {
				srv.SetFile(tc.file, fetchtest.DigestFile(map[string][]byte{KernelName: good.Kernel}))
			} else {
				srv.SetFile(tc.file, fetchtest.DigestFile(good.Sets))
			}
			rel, err := f.Fetch(context.Background(), "9.3", "i386", tc.then...)
			if err != nil {
				t.Fatalf("Fetch after the mirror was fixed: %v", err)
			}
			if len(rel.Sets) != len(tc.then) {
				t.Errorf("got %d sets, want %d", len(rel.Sets), len(tc.then))
			}
			// Now cached as the mirror has it: no request more.
			srv.ResetLog()
			if rel, err := f.Fetch(context.Background(), "9.3", "i386", tc.then...); err != nil || rel.Requests != 0 {
				t.Errorf("Fetch again: %d requests, %v; want none", rel.Requests, err)
			}
		})
	}

	// A set the mirror does not list either costs one request for the
	// digest file, then fails as before.
	srv, f := setup(t)
	if _, err := f.Fetch(context.Background(), "9.3", "i386"); err != nil {
		t.Fatal(err)
	}
	srv.ResetLog()
	_, err := f.Fetch(context.Background(), "9.3", "i386", "games")
	if !errors.Is(err, ErrUnknownSet) {
		t.Errorf("Fetch of a set no list has = %v, want %v", err, ErrUnknownSet)
	}
	if reqs := srv.Requests(); len(reqs) != 1 || !strings.HasSuffix(reqs[0].Path, "sets/SHA512") {
		t.Errorf("requests %v, want the sets' SHA512 once", reqs)
	}
}

// TestStaleDigestFileMirrorDown: when the mirror cannot be asked again for
// a cached list that lacks what was asked for (offline), the cached list's
// answer stands, saying the mirror could not be asked; a typo offline
// ("rescu") was called a network error.
func TestStaleDigestFileMirrorDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string // served without the kernel when set
		sets []string
		want error
	}{
		{"a set no list has", "", []string{"rescu"}, ErrUnknownSet},
		{"the kernel missing", fetchtest.KernelPath("9.3", "i386", "SHA512"), []string{"rescue"}, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, f := setup(t)
			if tc.file != "" {
				srv.SetFile(tc.file, fetchtest.DigestFile(map[string][]byte{"netbsd-INSTALL.gz": []byte("x")}))
			}
			f.Fetch(context.Background(), "9.3", "i386") // caches the lists
			f.Mirror = "http://127.0.0.1:1/pub/NetBSD"   // the mirror is down
			_, err := f.Fetch(context.Background(), "9.3", "i386", tc.sets...)
			if !errors.Is(err, tc.want) || errors.Is(err, ErrNetwork) || !strings.Contains(err.Error(), "could not be asked again") {
				t.Errorf("Fetch = %v, want %v saying the mirror could not be asked again", err, tc.want)
			}
		})
	}
}

package fetch

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// TestSetRenamedOnMirror: a set the mirror renamed (base.tgz replaced by
// base.tar.xz, its SHA512 updated) since its list was cached is found
// under its new name: a 404 for a name the cached list gives fetches the
// list again once. Every run failed alike, "the mirror is incomplete",
// for the cached list was fetched again only when it lacked the name.
// When the list cannot be had again, the error says the name came from
// the cached list.
func TestSetRenamedOnMirror(t *testing.T) {
	old := []byte("the base set as a tgz\n")
	for _, tc := range []struct {
		name     string
		listDown bool     // the sets' SHA512 cannot be had again
		sets     []string // asked for after the rename
		want     error
		says     string
	}{
		{"renamed", false, []string{"base"}, nil, ""},
		{"renamed, asked with another", false, []string{"rescue", "base"}, nil, ""},
		{"list cannot be had again", true, []string{"base"}, ErrNotFound, "the cached list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rel := testRelease()
			rel.Sets = map[string][]byte{"rescue.tgz": testRescue, "base.tgz": old}
			srv := fetchtest.NewServer(rel)
			t.Cleanup(srv.Close)
			f := &Fetcher{Mirror: srv.Mirror(), Cache: t.TempDir()}
			if _, err := f.Fetch(context.Background(), "9.3", "i386", "rescue"); err != nil {
				t.Fatal(err) // caches the list naming base.tgz
			}
			rel.Sets = map[string][]byte{"rescue.tgz": testRescue, "base.tar.xz": testBase}
			srv.AddRelease(rel)
			srv.SetFault(fetchtest.SetsPath("9.3", "i386", "base.tgz"), fetchtest.Fault{Status: http.StatusNotFound})
			if tc.listDown {
				srv.SetFault(fetchtest.SetsPath("9.3", "i386", "SHA512"), fetchtest.Fault{Status: http.StatusInternalServerError})
			}
			got, err := f.Fetch(context.Background(), "9.3", "i386", tc.sets...)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) || strings.Contains(err.Error(), "the mirror is incomplete") {
					t.Fatalf("Fetch = %v, want %v saying %q", err, tc.want, tc.says)
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch after the rename: %v", err)
			}
			last := got.Sets[len(got.Sets)-1]
			if last.Name != "base.tar.xz" || last.Set != "base" {
				t.Errorf("got %s as set %q, want base.tar.xz as base", last.Name, last.Set)
			}
			if len(got.Sets) != len(tc.sets) {
				t.Errorf("got %d sets, want %d", len(got.Sets), len(tc.sets))
			}
			// The new list is cached: no request more.
			srv.ResetLog()
			if again, err := f.Fetch(context.Background(), "9.3", "i386", tc.sets...); err != nil || again.Requests != 0 {
				t.Errorf("Fetch again: %v, %v; want no request", again, err)
			}
		})
	}

	// A mirror whose fresh list names the file it answers 404 for is
	// incomplete, said so after one request more for the list.
	srv, f := setup(t)
	srv.SetFault(fetchtest.SetsPath("9.3", "i386", "base.tar.xz"), fetchtest.Fault{Status: http.StatusNotFound})
	if _, err := f.Fetch(context.Background(), "9.3", "i386", "rescue"); err != nil {
		t.Fatal(err)
	}
	srv.ResetLog()
	_, err := f.Fetch(context.Background(), "9.3", "i386", "base")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "the mirror is incomplete") {
		t.Errorf("Fetch = %v, want %v saying the mirror is incomplete", err, ErrNotFound)
	}
	var lists int
	for _, r := range srv.Requests() {
		if strings.HasSuffix(r.Path, "/SHA512") {
			lists++
		}
	}
	if lists != 1 {
		t.Errorf("requests %v: want the sets' SHA512 once", srv.Requests())
	}
}

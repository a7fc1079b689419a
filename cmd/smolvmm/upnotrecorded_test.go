package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/rebuild"
)

// TestUpRecordFailsAfterBuild: when the record of an image up just built
// cannot be written (here a directory stands at its path, so the cache's
// directory is writable yet the record is not), up noted that "the next
// up rebuilds it"; the next up stops instead, an image no record
// describes, and the note says so and what to do.
func TestUpRecordFailsAfterBuild(t *testing.T) {
	f := newFakeUp(t)
	opts := upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
	fe := &fetch.Fetcher{Cache: f.cache}
	dir, err := fe.ReleaseDir("9.3", "i386")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(string(rebuild.DirStamp(dir, opts.Image)), 0o755); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if _, err := up(context.Background(), &log, f.deps(), opts); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"smolvmm up: note: cannot record which release and service built " + opts.Image + " (",
		"); the next up will find no record of it and stop, leaving it as it is",
		"run that up with --keep-image to boot it as it is, or remove the image to have it built again\n",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("up does not say %q:\n%s", want, log.String())
		}
	}
	if strings.Contains(log.String(), "rebuilds it") {
		t.Errorf("up says the next up rebuilds the image:\n%s", log.String())
	}
	// What the note says of the next up.
	upRefused(t, f, opts, "service fetch", "NetBSD 9.3/i386")
}

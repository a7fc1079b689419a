package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/fetch/fetchtest"
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

// upRefusedOther is upRefused for an image the records of the releases
// builtFor (in the same cache) say up built, and none of release's: the
// refusal names them and advises removing the image, -i, or up for the
// release it was built for, never --keep-image, which would boot it with
// release's kernel and record it as release's.
func upRefusedOther(t *testing.T, f *fakeUp, opts upOptions, calls, release string, builtFor []string) {
	t.Helper()
	err := upRefusedSaying(t, f, opts, calls,
		"image "+opts.Image+": up built it for "+strings.Join(builtFor, " and ")+
			", and no record in the cache says it did from "+release+"'s sets",
		"remove it (rm "+opts.Image+")", "give another image with -i", "to boot it as it is, run up with ")
	if strings.Contains(err.Error(), "--keep-image") {
		t.Errorf("up: %v: advises --keep-image, which boots the image with %s's kernel", err, release)
	}
}

// TestUpImageBuiltForAnotherRelease: after up rescue (i386), up --arch
// amd64 rescue was refused as an image no record describes, its first
// advice --keep-image, which boots the i386 image with the amd64 kernel
// and records it as amd64's; the i386 cache's record of that very file
// said which release up built it for. The refusal says so, and how to
// boot it (the release it was built for) or replace it. Without that
// record (the i386 cache cleared, a copy), the refusal is as before.
func TestUpImageBuiltForAnotherRelease(t *testing.T) {
	tests := []struct {
		name     string
		after    func(t *testing.T, f *fakeUp, opts *upOptions)
		builtFor []string // the releases named; none: no record elsewhere
		boot     string   // the advice to boot it
		calls    string
	}{
		{"nothing", func(*testing.T, *fakeUp, *upOptions) {}, []string{"NetBSD 9.3/i386"}, "--version 9.3 --arch i386", "service fetch strip"},
		{"recorded for another version too", func(t *testing.T, f *fakeUp, opts *upOptions) {
			if err := rebuild.DirStamp(filepath.Join(f.cache, "9.2", "i386"), opts.Image).Record(opts.Image, rebuild.FilesDigest, 1, "key"); err != nil {
				t.Fatal(err)
			}
		}, []string{"NetBSD 9.2/i386", "NetBSD 9.3/i386"}, "the --version and --arch of one of those", "service fetch strip"},
		{"the i386 cache cleared", func(t *testing.T, f *fakeUp, _ *upOptions) {
			if err := os.RemoveAll(filepath.Join(f.cache, "9.3", "i386")); err != nil {
				t.Fatal(err)
			}
		}, nil, "", "service fetch strip"},
		{"image copied", copyImage, nil, "", "service fetch strip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUp(t)
			f.srv.AddRelease(fetchtest.Release{Version: "9.3", Arch: "amd64", Kernel: []byte("amd64 kernel"),
				Sets: map[string][]byte{"rescue.tgz": []byte("amd64 rescue")}})
			opts := upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
			if _, err := up(context.Background(), &bytes.Buffer{}, f.deps(), opts); err != nil {
				t.Fatal(err)
			}
			guestWrites(t, opts.Image)
			tt.after(t, f, &opts)
			f.arch = "amd64"
			if tt.builtFor == nil {
				upRefused(t, f, opts, tt.calls, "NetBSD 9.3/amd64")
				return
			}
			upRefusedOther(t, f, opts, tt.calls, "NetBSD 9.3/amd64", tt.builtFor)
			_, err := up(context.Background(), &bytes.Buffer{}, f.deps(), opts)
			if err == nil || !strings.HasSuffix(err.Error(), "to boot it as it is, run up with "+tt.boot) {
				t.Errorf("up: %v, want the advice to boot it with %s", err, tt.boot)
			}
			// As advised: up for the release it was built for boots it.
			f.arch = "i386"
			upAgain(t, f, opts, "service fetch run", "")
		})
	}
}

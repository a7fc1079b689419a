package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpKeepsWhatTheGuestWrote: the record that up built an image lives
// in the cache, named after the image's path; a user who cleared the
// cache, or moved the image's directory, had the image rebuilt by the
// next up ("no record in the cache says up built it"), and what the
// guest wrote to it lost. A moved image's record is found by the file's
// ID, and it boots; one whose record is gone is left as it is and up
// says what to do; --keep-image then boots it, and records it, so that
// the next up boots it too; removed, it is built again.
func TestUpKeepsWhatTheGuestWrote(t *testing.T) {
	tests := []struct {
		name  string
		after func(t *testing.T, f *fakeUp, opts *upOptions)
		calls string // of the next up: "" when it refuses
	}{
		{"nothing", func(*testing.T, *fakeUp, *upOptions) {}, "service fetch run"},
		{"cache cleared", func(t *testing.T, f *fakeUp, _ *upOptions) {
			if err := os.RemoveAll(f.cache); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"directory moved", func(t *testing.T, f *fakeUp, opts *upOptions) {
			dir := filepath.Dir(opts.Image)
			if err := os.Rename(dir, dir+"-moved"); err != nil {
				t.Fatal(err)
			}
			opts.Image = filepath.Join(dir+"-moved", "rescue.img")
		}, "service fetch run"},
		{"image renamed", func(t *testing.T, f *fakeUp, opts *upOptions) {
			to := filepath.Join(filepath.Dir(opts.Image), "mine.img")
			if err := os.Rename(opts.Image, to); err != nil {
				t.Fatal(err)
			}
			opts.Image = to
		}, "service fetch run"},
		{"image copied", copyImage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUp(t)
			dir := filepath.Join(t.TempDir(), "vm")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			opts := upOptions{Service: "rescue", Image: filepath.Join(dir, "rescue.img")}
			if _, err := up(context.Background(), &bytes.Buffer{}, f.deps(), opts); err != nil {
				t.Fatal(err)
			}
			guestWrites(t, opts.Image)
			tt.after(t, f, &opts)
			want, err := os.ReadFile(opts.Image)
			if err != nil {
				t.Fatal(err)
			}
			if tt.calls != "" {
				upAgain(t, f, opts, tt.calls, "")
			} else {
				// The cache was cleared: its kernel is fetched and
				// stripped again, and nothing built or booted.
				calls := "service fetch strip"
				if tt.name == "image copied" {
					calls = "service fetch"
				}
				upRefused(t, f, opts, calls, "NetBSD 9.3/i386")
				opts.KeepImage = true
				var log bytes.Buffer
				f.calls = nil
				if _, err := up(context.Background(), &log, f.deps(), opts); err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(f.calls, " "); got != "service fetch run" {
					t.Errorf("up --keep-image calls %q, want a run of the image as it is\n%s", got, log.String())
				}
				if line := "mkimg   " + opts.Image + " kept as it is (--keep-image), though not recorded as built from this release"; !strings.Contains(log.String(), line) {
					t.Errorf("up --keep-image does not say %q:\n%s", line, log.String())
				}
				opts.KeepImage = false
				upAgain(t, f, opts, "service fetch run", "")
			}
			if f.ran[1] != opts.Image {
				t.Errorf("ran %q, want the image %s", f.ran[1], opts.Image)
			}
			if got, _ := os.ReadFile(opts.Image); !bytes.Equal(got, want) {
				t.Errorf("the image now holds %q..., want what the guest wrote kept", got[:min(len(got), 40)])
			}
			// A rebuild asked for: the image removed.
			if err := os.Remove(opts.Image); err != nil {
				t.Fatal(err)
			}
			upAgain(t, f, opts, "service fetch build run", "")
		})
	}
}

// TestUpKeepImageOverRebuilds: --keep-image boots the image up would have
// rebuilt (here for another version of the service), as it is, and
// records it; without the flag that image is rebuilt.
func TestUpKeepImageOverRebuilds(t *testing.T) {
	for _, keep := range []bool{false, true} {
		f := newFakeUp(t)
		f.svc.Digest = "v1"
		opts := upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
		if _, err := up(context.Background(), &bytes.Buffer{}, f.deps(), opts); err != nil {
			t.Fatal(err)
		}
		guestWrites(t, opts.Image)
		want, _ := os.ReadFile(opts.Image)
		f.svc.Digest = "v2"
		opts.KeepImage = keep
		if !keep {
			upAgain(t, f, opts, "service fetch build run", "up built it from another service")
			continue
		}
		upAgain(t, f, opts, "service fetch run", "")
		if got, _ := os.ReadFile(opts.Image); !bytes.Equal(got, want) {
			t.Errorf("--keep-image: the image now holds %q...", got[:min(len(got), 40)])
		}
		opts.KeepImage = false
		upAgain(t, f, opts, "service fetch run", "")
	}
}

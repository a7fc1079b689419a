package main

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/fetch/fetchtest"
	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/rebuild"
	"github.com/smolvmm/smolvmm/service"
)

// fakeUp records the calls up makes to its stages.
type fakeUp struct {
	srv      *fetchtest.Server
	cache    string
	svc      upService
	calls    []string
	builds   []upBuild
	strips   int
	buildErr error
	ran      [2]string
	arch     string // the release's port; "" is i386
	load     bool   // services are loaded as up loads them (loadUpService), not svc
	// duringFetch, when set, runs in the fetch step (as a user's edit
	// during a download); rcs gets the etc/rc each build of a loaded
	// service reads.
	duringFetch func()
	rcs         []string
	// stripWarnings are the warnings the strip gives.
	stripWarnings []string
}

func newFakeUp(t *testing.T) *fakeUp {
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel image"),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet(), "base.tgz": []byte("base")}})
	t.Cleanup(srv.Close)
	return &fakeUp{srv: srv, cache: t.TempDir(),
		svc: upService{Sets: []string{"rescue"}, SizeMB: 10, ModTime: time.Now().Add(-time.Hour), Where: "embedded"}}
}

func (f *fakeUp) deps() upDeps {
	fe := &fetch.Fetcher{Mirror: f.srv.Mirror(), Cache: f.cache}
	return upDeps{
		service: func(name, dir string) (upService, error) {
			f.calls = append(f.calls, "service")
			if f.load {
				return loadUpService(name, dir)
			}
			if name != "rescue" {
				return upService{}, errors.New(`no service "` + name + `"`)
			}
			return f.svc, nil
		},
		fetch: func(ctx context.Context, sets []string) (*fetch.Release, error) {
			f.calls = append(f.calls, "fetch")
			if f.duringFetch != nil {
				f.duringFetch()
			}
			arch := f.arch
			if arch == "" {
				arch = "i386"
			}
			return fe.Fetch(ctx, "9.3", arch, sets...)
		},
		keep: []string{"mainbus", "com", "ld"},
		strip: func(in, out string, keep []string, warn func(string)) (string, error) {
			f.calls = append(f.calls, "strip")
			f.strips++
			for _, w := range f.stripWarnings {
				warn(w)
			}
			b, err := os.ReadFile(in)
			if err != nil {
				return "", err
			}
			return "disabled 2 drivers", os.WriteFile(out, append(b, []byte(" stripped "+strings.Join(keep, ","))...), 0o644)
		},
		build: func(ctx context.Context, b upBuild) (string, error) {
			f.calls = append(f.calls, "build")
			f.builds = append(f.builds, b)
			if b.Svc != nil {
				rc, err := fs.ReadFile(b.Svc.FS, "etc/rc")
				if err != nil {
					return "", err
				}
				f.rcs = append(f.rcs, string(rc))
			}
			// As the real builder: half an image never shows under b.Out,
			// and the rename replaces what b.Replace allows.
			var commit []atomicfile.Option
			if b.Replace != nil {
				commit = append(commit, atomicfile.ReplaceIf(b.Replace))
			}
			return "10 MiB ext2", atomicfile.WriteContext(ctx, b.Out, 0o644, func(w *os.File) error {
				if f.buildErr != nil {
					w.WriteString("half")
					return f.buildErr
				}
				// Text, then ext2's superblock magic at 1080: up
				// tells an image from another file by it.
				img := make([]byte, 2048)
				copy(img, "image of "+strings.Join(b.Sets, ","))
				img[1080], img[1081] = 0x53, 0xEF
				_, err := w.Write(img)
				return err
			}, commit...)
		},
		run: func(ctx context.Context, kernel, image string) error {
			f.calls = append(f.calls, "run")
			f.ran = [2]string{kernel, image}
			return nil
		},
	}
}

func TestUpStepsAndCaching(t *testing.T) {
	f := newFakeUp(t)
	image := filepath.Join(t.TempDir(), "rescue.img")
	opts := upOptions{Service: "rescue", Image: image}

	var log bytes.Buffer
	res, err := up(context.Background(), &log, f.deps(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); got != "service fetch strip build run" {
		t.Errorf("first run calls %q", got)
	}
	for _, re := range []string{
		`(?m)^smolvmm up: service rescue \(embedded\): sets rescue, image 10 MiB \(.*s\)`,
		`(?m)^smolvmm up:   netbsd-GENERIC.gz: downloaded`,
		`(?m)^smolvmm up:   rescue.tgz: downloaded`,
		`(?m)^smolvmm up: fetch   NetBSD 9.3/i386: 2 files verified, 4 HTTP requests \(.*s\)`,
		`(?m)^smolvmm up: kstrip  disabled 2 drivers -> .*netbsd-GENERIC.kstrip-r[0-9]+-[0-9a-f]{13} \(.*s\)`,
		`(?m)^smolvmm up: mkimg   built .*rescue.img: 10 MiB ext2 \(.*s\)`,
		`(?m)^smolvmm up: run     .*kstrip-.* with .*rescue.img as ld0`,
		`(?m)^smolvmm up: run     ended after `,
	} {
		if !regexp.MustCompile(re).MatchString(log.String()) {
			t.Errorf("log lacks %q:\n%s", re, log.String())
		}
	}
	if b := f.builds[0]; len(b.Sets) != 1 || b.Sets[0] != res.Release.Sets[0].Path || b.SizeMB != 10 || b.Service != "rescue" || b.Arch != "i386" {
		t.Errorf("build request %+v", b)
	}
	if got, _ := os.ReadFile(image); !strings.HasPrefix(string(got), "image of ") {
		t.Errorf("image holds %q", got)
	}
	if f.ran != [2]string{res.Kernel, image} {
		t.Errorf("ran %v, want %s with %s", f.ran, res.Kernel, image)
	}
	if got, _ := os.ReadFile(res.Kernel); string(got) != "kernel image stripped mainbus,com,ld" {
		t.Errorf("stripped kernel holds %q", got)
	}

	// Second run: no request, no strip, no build.
	f.calls = nil
	f.srv.ResetLog()
	log.Reset()
	if _, err := up(context.Background(), &log, f.deps(), opts); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); got != "service fetch run" {
		t.Errorf("second run calls %q", got)
	}
	if n := len(f.srv.Requests()); n != 0 {
		t.Errorf("second run made %d requests", n)
	}
	for _, s := range []string{"0 HTTP requests", "kstrip  cached", "rescue.img is up to date"} {
		if !strings.Contains(log.String(), s) {
			t.Errorf("second run log lacks %q:\n%s", s, log.String())
		}
	}
}

func TestUpRebuildsWhatIsStale(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, f *fakeUp, res *upResult)
		calls  string
	}{
		{"nothing changed", func(*testing.T, *fakeUp, *upResult) {}, "service fetch run"},
		{"service edited", func(t *testing.T, f *fakeUp, _ *upResult) { f.svc.ModTime = time.Now().Add(time.Minute) }, "service fetch build run"},
		{"built-in service (no time)", func(t *testing.T, f *fakeUp, _ *upResult) { f.svc.ModTime = time.Time{} }, "service fetch run"},
		// The image's record holds each set's SHA512: a set touched, or
		// downloaded again with the same bytes, threw away what the
		// guest wrote to the image by its date.
		{"set touched", func(t *testing.T, f *fakeUp, res *upResult) {
			future := time.Now().Add(time.Minute)
			os.Chtimes(res.Release.Sets[0].Path, future, future)
		}, "service fetch run"},
		{"set damaged, downloaded again", func(t *testing.T, f *fakeUp, res *upResult) {
			os.WriteFile(res.Release.Sets[0].Path, []byte("damaged"), 0o644)
			time.Sleep(20 * time.Millisecond)
		}, "service fetch run"},
		{"image deleted", func(t *testing.T, f *fakeUp, res *upResult) { os.Remove(res.Image) }, "service fetch build run"},
		{"stripped kernel corrupt", func(t *testing.T, f *fakeUp, res *upResult) {
			os.WriteFile(res.Kernel, []byte("bad"), 0o644)
		}, "service fetch strip run"},
		{"stripped kernel sidecar gone", func(t *testing.T, f *fakeUp, res *upResult) { os.Remove(res.Kernel + ".sha512") }, "service fetch strip run"},
		{"service needs another set", func(t *testing.T, f *fakeUp, res *upResult) {
			f.svc.Sets = []string{"rescue", "base"}
			// up sees the new set by its mtime, newer than the image's; file
			// times move in clock ticks (up to 10 ms), so let one pass, or the
			// set fetched next may carry the image's time.
			time.Sleep(20 * time.Millisecond)
		}, "service fetch build run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUp(t)
			opts := upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
			res, err := up(context.Background(), io.Discard, f.deps(), opts)
			if err != nil {
				t.Fatal(err)
			}
			tt.change(t, f, res)
			f.calls = nil
			var log bytes.Buffer
			if _, err := up(context.Background(), &log, f.deps(), opts); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(f.calls, " "); got != tt.calls {
				t.Errorf("calls %q, want %q", got, tt.calls)
			}
			if strings.Contains(tt.calls, "build") && tt.name != "image deleted" && !strings.Contains(log.String(), "mkimg   rebuilt") {
				t.Errorf("log does not say the image was rebuilt:\n%s", log.String())
			}
			// An edited stripped kernel was stripped again without a word.
			note := "smolvmm up: note: the stripped kernel " + res.Kernel + " was changed since up made it; stripped again\n"
			if got := strings.Contains(log.String(), note); got != (tt.name == "stripped kernel corrupt") {
				t.Errorf("log has the note %q: %v\n%s", note, got, log.String())
			}
		})
	}
}

// TestUpImageOfAnotherRelease: SERVICE.img is one path for every release;
// an image up built for amd64 was called up to date by an i386 up (its
// stamp in the i386 cache named the image amd64 replaced, and was
// ignored; the image was newer than the i386 sets) and booted by the
// i386 kernel. An image no record of this release describes was then
// rebuilt, and what the guest wrote to it lost (one whose record went
// with a cleared cache too): it is neither booted nor rebuilt, and up
// says which release it built it for. Removed, it is built for the
// release asked for.
func TestUpImageOfAnotherRelease(t *testing.T) {
	f := newFakeUp(t)
	f.srv.AddRelease(fetchtest.Release{Version: "9.3", Arch: "amd64", Kernel: []byte("amd64 kernel"),
		Sets: map[string][]byte{"rescue.tgz": []byte("amd64 rescue")}})
	opts := upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
	for i, step := range []struct {
		arch, calls string
		remove      bool   // the image removed first
		builtFor    string // the port up built the image for, when refused
	}{
		{"i386", "service fetch strip build run", false, ""},
		{"amd64", "service fetch strip", false, "i386"},
		{"i386", "service fetch run", false, ""},
		{"amd64", "service fetch build run", true, ""},
		{"amd64", "service fetch run", false, ""},
		{"i386", "service fetch", false, "amd64"},
	} {
		f.arch = step.arch
		if step.remove {
			os.Remove(opts.Image)
		}
		if step.builtFor != "" {
			upRefusedOther(t, f, opts, step.calls, "NetBSD 9.3/"+step.arch, []string{"NetBSD 9.3/" + step.builtFor})
			continue
		}
		upAgain(t, f, opts, step.calls, "")
		if strings.Contains(step.calls, "build") {
			if got := f.builds[len(f.builds)-1].Arch; got != step.arch {
				t.Errorf("up %d (%s) built for %s", i, step.arch, got)
			}
		}
	}
}

// upRefused runs up once more, which must refuse to replace (or boot) an
// image no record says it built from the release, calling no more than
// calls, leaving the image as it was and saying what to do.
func upRefused(t *testing.T, f *fakeUp, opts upOptions, calls, release string) {
	t.Helper()
	upRefusedSaying(t, f, opts, calls,
		"image "+opts.Image+": no record in the cache says up built it from "+release+"'s sets",
		"run up again with --keep-image", "remove it (rm "+opts.Image+")", "give another image with -i")
}

// upRefusedSaying runs up once more, which must fail with an error that
// starts with want and holds every advice, calling no more than calls and
// leaving the image as it was; it returns that error.
func upRefusedSaying(t *testing.T, f *fakeUp, opts upOptions, calls, want string, advice ...string) error {
	t.Helper()
	before, err := os.ReadFile(opts.Image)
	if err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	var log bytes.Buffer
	_, err = up(context.Background(), &log, f.deps(), opts)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("up: %v, want %q\n%s", err, want, log.String())
	}
	for _, a := range advice {
		if !strings.Contains(err.Error(), a) {
			t.Errorf("up: %v, want the advice %q", err, a)
		}
	}
	if got := strings.Join(f.calls, " "); got != calls {
		t.Errorf("calls %q, want %q\n%s", got, calls, log.String())
	}
	if after, _ := os.ReadFile(opts.Image); !bytes.Equal(before, after) {
		t.Errorf("the image changed: %q..., was %q...", after[:min(len(after), 40)], before[:min(len(before), 40)])
	}
	return err
}

// copyImage copies opts' image to copy.img beside it and makes opts give
// the copy: a file up never built, though its bytes are an image up did.
func copyImage(t *testing.T, _ *fakeUp, opts *upOptions) {
	b, err := os.ReadFile(opts.Image)
	if err != nil {
		t.Fatal(err)
	}
	opts.Image = filepath.Join(filepath.Dir(opts.Image), "copy.img")
	if err := os.WriteFile(opts.Image, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestUpCacheKeepsNoStamp: when the release's cache cannot keep the
// record of which release built the image (here a file stands where its
// directory goes: it fails for root too), up built the image again on
// every run, losing what the guest wrote to it; the image's dates decide
// instead, and up says the release cannot be checked.
func TestUpCacheKeepsNoStamp(t *testing.T) {
	f := newFakeUp(t)
	rel := filepath.Join(f.cache, "9.3", "i386")
	if err := os.MkdirAll(rel, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rel, "images"), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
	for i, calls := range []string{"service fetch strip build run", "service fetch run", "service fetch run"} {
		f.calls = nil
		var log bytes.Buffer
		if _, err := up(context.Background(), &log, f.deps(), opts); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(f.calls, " "); got != calls {
			t.Errorf("up %d calls %q, want %q\n%s", i+1, got, calls, log.String())
		}
		if i > 0 && !strings.Contains(log.String(), "cannot be checked") {
			t.Errorf("up %d does not say the image's release cannot be checked:\n%s", i+1, log.String())
		}
	}
}

// TestUpKeepsAnImageInUse: a stale image that a running VM holds (its
// flock) is not replaced under it; up says so and builds nothing.
// TestUpBuiltinServiceChanges: a built-in service has no date; up rebuilds
// an image it built from another version of the service (a smolvmm upgrade),
// but not one the service still matches (a new binary with the same
// service). One it did not build (mkimg, a copy) is neither rebuilt nor
// booted, for no record says which release it was built from: it was
// rebuilt, and what was written to it lost.
func TestUpBuiltinServiceChanges(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, f *fakeUp, image string)
		calls  string
	}{
		{"same service, new binary", func(*testing.T, *fakeUp, string) {}, "service fetch run"},
		{"service changed", func(_ *testing.T, f *fakeUp, _ string) { f.svc.Digest = "v2" }, "service fetch build run"},
		{"service changed, image replaced by hand", func(t *testing.T, f *fakeUp, image string) {
			f.svc.Digest = "v2"
			b, err := os.ReadFile(image)
			if err != nil {
				t.Fatal(err)
			}
			os.Remove(image)
			if err := os.WriteFile(image, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "service fetch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUp(t)
			f.svc.ModTime, f.svc.Digest = time.Time{}, "v1"
			opts := upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
			if _, err := up(context.Background(), io.Discard, f.deps(), opts); err != nil {
				t.Fatal(err)
			}
			tt.change(t, f, opts.Image)
			if strings.Contains(tt.name, "by hand") {
				upRefused(t, f, opts, tt.calls, "NetBSD 9.3/i386")
				return
			}
			upAgain(t, f, opts, tt.calls, "up built it from another service, or from other files of this one")
		})
	}
}

// TestUpRebuildsForAnOlderImageBuilder: an image up built with an older
// image builder (amd64 /dev nodes before f032337), or stamped before the
// builder's revision was recorded, is rebuilt, whatever its dates; one up
// did not build is neither rebuilt nor booted, for want of a record of
// its release.
func TestUpRebuildsForAnOlderImageBuilder(t *testing.T) {
	tests := []struct {
		name  string
		stamp func(fields []string) string // the stamp's new content
		swap  bool                         // the image replaced by hand
		calls string
	}{
		{"same builder", func(f []string) string { return strings.Join(f, " ") }, false, "service fetch run"},
		{"stamped before revisions", func(f []string) string { return f[0] + " " + f[1] }, false, "service fetch build run"},
		{"older builder", func(f []string) string { return fmt.Sprintf("%s %s %d", f[0], f[1], imagebuilder.Revision-1) }, false, "service fetch build run"},
		{"older builder, image replaced by hand", func(f []string) string { return f[0] + " " + f[1] }, true, "service fetch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUp(t)
			opts := upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
			res, err := up(context.Background(), io.Discard, f.deps(), opts)
			if err != nil {
				t.Fatal(err)
			}
			stamp := string(rebuild.ReleaseStamp(res.Release, res.Image))
			b, err := os.ReadFile(stamp)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(stamp, []byte(tt.stamp(strings.Fields(string(b)))+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.swap {
				img, err := os.ReadFile(opts.Image)
				if err != nil {
					t.Fatal(err)
				}
				os.Remove(opts.Image)
				if err := os.WriteFile(opts.Image, img, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.swap {
				upRefused(t, f, opts, tt.calls, "NetBSD 9.3/i386")
				return
			}
			upAgain(t, f, opts, tt.calls, "built by an older smolvmm image builder")
		})
	}
}

// TestUpNotAnImage: a file under the image's name that is no ext2 image
// is never called up to date and booted (a kernel written there by
// kstrip -o rescue.img was): up rebuilds it when it built that very file
// (something wrote over it in place), and otherwise leaves it alone and
// says what to do, building and running nothing.
func TestUpNotAnImage(t *testing.T) {
	kernel := "\x7fELF\x01\x01\x01 a NetBSD kernel"
	tests := []struct {
		name    string
		builtin bool // a built-in service (dated by its digest)
		change  func(t *testing.T, image string)
		calls   string
		want    string // in the log, or the error with no run
	}{
		{"replaced by another file", false, func(t *testing.T, image string) {
			// As kstrip -o does: a file of its own renamed over the
			// image, which then still exists (another inode; one
			// removed first may be reused at once).
			tmp := image + ".new"
			if err := os.WriteFile(tmp, []byte(kernel), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, image); err != nil {
				t.Fatal(err)
			}
		}, "service fetch", "is not an ext2 image, and up did not build it"},
		{"written over in place", false, func(t *testing.T, image string) {
			if err := os.WriteFile(image, []byte(kernel), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "service fetch build run", "rebuilt (it was no longer an ext2 image)"},
		{"built-in service, written over in place", true, func(t *testing.T, image string) {
			if err := os.WriteFile(image, []byte(kernel), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "service fetch build run", "rebuilt (it was no longer an ext2 image)"},
		{"built-in service, replaced by another file", true, func(t *testing.T, image string) {
			// As kstrip -o does: a file of its own renamed over the
			// image, which then still exists (another inode; one
			// removed first may be reused at once).
			tmp := image + ".new"
			if err := os.WriteFile(tmp, []byte(kernel), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, image); err != nil {
				t.Fatal(err)
			}
		}, "service fetch", "is not an ext2 image, and up did not build it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUp(t)
			if tt.builtin {
				f.svc.ModTime, f.svc.Digest = time.Time{}, "v1"
			}
			opts := upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
			if _, err := up(context.Background(), io.Discard, f.deps(), opts); err != nil {
				t.Fatal(err)
			}
			tt.change(t, opts.Image)
			f.calls = nil
			var log bytes.Buffer
			_, err := up(context.Background(), &log, f.deps(), opts)
			if got := strings.Join(f.calls, " "); got != tt.calls {
				t.Errorf("calls %q, want %q\n%s", got, tt.calls, log.String())
			}
			if strings.Contains(tt.calls, "build") {
				if err != nil || !strings.Contains(log.String(), tt.want) {
					t.Errorf("err %v, log:\n%s\nwant %q", err, log.String(), tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "give another image with -i") {
				t.Errorf("err %v, want %q and advice", err, tt.want)
			}
			if b, _ := os.ReadFile(opts.Image); string(b) != kernel {
				t.Errorf("the file that was no image now holds %q...", b[:min(len(b), 40)])
			}
		})
	}
}

// staleUpImage is a fake up whose rescue image it built, dated two days
// back so that the next up rebuilds it.
func staleUpImage(t *testing.T) (*fakeUp, upOptions) {
	t.Helper()
	f := newFakeUp(t)
	opts := upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
	if _, err := up(context.Background(), io.Discard, f.deps(), opts); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(opts.Image, old, old)
	return f, opts
}

func TestUpKeepsAnImageInUse(t *testing.T) {
	f, opts := staleUpImage(t)
	before, _ := os.ReadFile(opts.Image)
	vm, err := os.Open(opts.Image)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := unix.Flock(int(vm.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	_, err = up(context.Background(), io.Discard, f.deps(), opts)
	if err == nil || !strings.Contains(err.Error(), "in use by a running VM: stop that VM before replacing the image") {
		t.Fatalf("err = %v, want the image in use", err)
	}
	if got := strings.Join(f.calls, " "); got != "service fetch" {
		t.Errorf("calls %q, want no build and no run", got)
	}
	if after, _ := os.ReadFile(opts.Image); !bytes.Equal(before, after) {
		t.Error("the image in use was replaced")
	}
	// Once the VM is gone, the stale image is rebuilt.
	vm.Close()
	f.calls = nil
	if _, err := up(context.Background(), io.Discard, f.deps(), opts); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); got != "service fetch build run" {
		t.Errorf("calls after the VM ended %q", got)
	}
}

// TestUpKeepsAWriteProtectedImage: a stale image its owner made
// read-only (chmod a-w) is not rebuilt, as kstrip and mkimg -f leave such
// a file: the rename needs only the directory writable, so it was
// replaced. Made writable again, it is rebuilt.
func TestUpKeepsAWriteProtectedImage(t *testing.T) {
	f, opts := staleUpImage(t)
	if err := os.Chmod(opts.Image, 0o444); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(opts.Image)
	f.calls = nil
	_, err := up(context.Background(), io.Discard, f.deps(), opts)
	want := "image " + opts.Image + " is write-protected (mode 0444): up does not replace it; give -i another file, or make it writable first (chmod u+w " + opts.Image + ")"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if got := strings.Join(f.calls, " "); got != "service fetch" {
		t.Errorf("calls %q, want no build and no run", got)
	}
	if after, _ := os.ReadFile(opts.Image); !bytes.Equal(before, after) {
		t.Error("the write-protected image was replaced")
	}
	if err := os.Chmod(opts.Image, 0o644); err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	if _, err := up(context.Background(), io.Discard, f.deps(), opts); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); got != "service fetch build run" {
		t.Errorf("calls once writable %q", got)
	}
}

func TestUpKeepListIsPartOfTheKey(t *testing.T) {
	f := newFakeUp(t)
	opts := upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
	d := f.deps()
	a, err := up(context.Background(), io.Discard, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	d.keep = append(d.keep, "vioif")
	b, err := up(context.Background(), io.Discard, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	if a.Kernel == b.Kernel || f.strips != 2 {
		t.Errorf("a new keep list reused %s (%d strips)", a.Kernel, f.strips)
	}
}

func TestUpErrors(t *testing.T) {
	tests := []struct {
		name    string
		service string
		setup   func(f *fakeUp, d *upDeps)
		want    string
		calls   string
	}{
		{"unknown service", "nope", nil, `service: no service "nope"`, "service"},
		{"unknown set", "rescue", func(f *fakeUp, d *upDeps) { f.svc.Sets = []string{"games"} }, `fetch: NetBSD 9.3/i386: unknown set "games"`, "service fetch"},
		{"strip fails", "rescue", func(f *fakeUp, d *upDeps) {
			d.strip = func(in, out string, keep []string, warn func(string)) (string, error) {
				return "", errors.New("no cfdata symbol")
			}
		}, "kstrip: ", "service fetch"},
		{"strip cannot write the cache", "rescue", func(f *fakeUp, d *upDeps) {
			d.strip = func(in, out string, keep []string, warn func(string)) (string, error) {
				return "", &os.PathError{Op: "open", Path: out + ".tmp", Err: unix.EROFS}
			}
		}, "read-only file system (choose a cache directory you may write with --cache DIR or XDG_CACHE_HOME)", "service fetch"},
		{"build fails", "rescue", func(f *fakeUp, d *upDeps) { f.buildErr = errors.New("image too small: need 12 MiB") }, "mkimg: image too small", "service fetch strip build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUp(t)
			d := f.deps()
			if tt.setup != nil {
				tt.setup(f, &d)
			}
			image := filepath.Join(t.TempDir(), "x.img")
			_, err := up(context.Background(), io.Discard, d, upOptions{Service: tt.service, Image: image})
			if err == nil || !strings.Contains(advise(err), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if got := strings.Join(f.calls, " "); got != tt.calls {
				t.Errorf("calls %q, want %q", got, tt.calls)
			}
			for _, p := range []string{image, image + ".tmp"} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists after a failure", p)
				}
			}
		})
	}
}

func TestUpCommandBadArguments(t *testing.T) {
	cache := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
		code int // 2 for command-line mistakes, 1 for errors of the run
	}{
		{"no service", []string{"up"}, "want exactly one SERVICE", 2},
		{"two services", []string{"up", "rescue", "base"}, `unexpected argument "base": smolvmm up takes one SERVICE`, 2},
		{"unknown service", []string{"up", "--cache", cache, "nope"}, `no service "nope" (known: base, rescue)`, 1},
		{"bad version", []string{"up", "--cache", cache, "--version", "../x", "rescue"}, `bad version "../x"`, 2},
		{"ftp mirror", []string{"up", "--cache", cache, "--mirror", "ftp://x/pub", "rescue"}, "not an http:// or https:// URL", 2},
		{"mirror with query", []string{"up", "--cache", cache, "--mirror", "http://127.0.0.1:1/pub/NetBSD?x=1", "rescue"}, `mirror "http://127.0.0.1:1/pub/NetBSD?x=1": a mirror URL names a directory: drop "?x=1"`, 2},
		// Run flags are checked before anything is fetched: the mirror
		// is unreachable, so a fetch would fail with a network error.
		{"memory before fetch", []string{"up", "--cache", cache, "--mirror", "http://127.0.0.1:1/pub", "-m", "0", "rescue"}, "-m 0: too little RAM", 2},
		{"network before fetch", []string{"up", "--cache", cache, "--mirror", "http://127.0.0.1:1/pub", "--net", "none", "-p", "8080:80", "rescue"}, "port forwards need the user network", 2},
		{"disk before fetch", []string{"up", "--cache", cache, "--mirror", "http://127.0.0.1:1/pub", "-d", "x.img,bogus", "rescue"}, `unknown option "bogus"`, 2},
		{"same host port before fetch", []string{"up", "--cache", cache, "--mirror", "http://127.0.0.1:1/pub", "-p", "18080:80", "-p", "18080:81", "rescue"}, "host port tcp 18080 given twice", 2},
		// As run refuses it: the snapshot is renamed into place after
		// privileges are dropped (root's 0700 directory: uid 61241, no
		// one's, may not).
		{"snapshot user before fetch", []string{"up", "--cache", cache, "--mirror", "http://127.0.0.1:1/pub", "--uid", "61241", "--gid", "61241",
			"--snapshot", filepath.Join(cache, "s.snap"), "-i", filepath.Join(t.TempDir(), "r.img"), "rescue"},
			"--snapshot " + filepath.Join(cache, "s.snap") + ": uid 61241, which the VM runs as, may not replace files in " + cache, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (slices.Contains(tt.args, "--user") || slices.Contains(tt.args, "--uid")) && os.Geteuid() != 0 {
				t.Skip("needs root, to drop to another user")
			}
			_, err := runTestApp(t, []*cli.Command{upCommand()}, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if code := exitCode(err); code != tt.code {
				t.Errorf("exit status %d, want %d", code, tt.code)
			}
		})
	}
}

func TestLoadUpService(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "web", "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "web", "etc", "rc"), []byte("httpd\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "web", "service.conf"), []byte("sets=rescue,base\nsize=32\n"), 0o644)
	newest := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(filepath.Join(dir, "web", "etc", "rc"), newest, newest)

	s, err := loadUpService("web", dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.Sets, ",") != "rescue,base" || s.SizeMB != 32 || s.Where != filepath.Join(dir, "web") || !s.ModTime.Equal(newest) {
		t.Errorf("got %+v, want sets rescue,base, 32 MiB, from %s, newest file %s", s, filepath.Join(dir, "web"), newest)
	}
	emb, err := loadUpService("rescue", "")
	if err != nil {
		t.Fatal(err)
	}
	// Not the binary's time: `make build` rewrites the binary on every run
	// of `make rescue`, and the image (and the guest's writes) would go.
	if emb.Where != "embedded" || len(emb.Sets) == 0 || !emb.ModTime.IsZero() {
		t.Errorf("embedded rescue: %+v, want sets and no time", emb)
	}
	// Its content dates it instead: a digest, the same at every load, and
	// another for another service.
	again, _ := loadUpService("rescue", "")
	base, err := loadUpService("base", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(emb.Digest) != 64 || again.Digest != emb.Digest || base.Digest == emb.Digest || len(s.Digest) != 64 || s.Digest == emb.Digest {
		t.Errorf("digests: rescue %q and %q, base %q, directory service %q; want one stable digest per service", emb.Digest, again.Digest, base.Digest, s.Digest)
	}
}

// TestBuildUpImageGrows builds a service whose service.conf size is too
// small for its sets, as the rescue service's 10 MiB would be for a release
// with a larger crunched binary: up has no size flag, so the image is sized
// to its content, says so, and is a clean file system.
func TestBuildUpImageGrows(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tiny", "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "tiny", "etc", "rc"), []byte("sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "tiny", "service.conf"), []byte("sets=rescue\nsize=2\n"), 0o644)
	set := filepath.Join(dir, "rescue.tgz")
	b, err := testsets.Bytes(testsets.Rescue(3<<20), "tgz")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(set, b, 0o644)
	out := filepath.Join(dir, "tiny.img")
	svc, err := service.Load("tiny", dir)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := buildUpImage(context.Background(), upBuild{Service: "tiny", Svc: svc, Sets: []string{set}, SizeMB: 2, Out: out})
	if err != nil {
		t.Fatalf("buildUpImage: %v", err)
	}
	if !strings.Contains(msg, "the service's 2 MiB is too small for these sets, which need 4 MiB: sized to content") {
		t.Errorf("message %q does not say the image was grown", msg)
	}
	if st, err := os.Stat(out); err != nil || st.Size() < 4<<20 {
		t.Fatalf("image: %v, want at least 4 MiB", err)
	}
	imagecheckFsck(t, out)
}

// TestBuildUpImageArch: up builds for the release's port; sets whose init
// is another port's (a mirror serving amd64 sets as i386's) are refused,
// naming both, not built with the release's /dev numbers.
func TestBuildUpImageArch(t *testing.T) {
	dir := t.TempDir()
	set := filepath.Join(dir, "rescue.tgz")
	writeELFSet(t, set, elf.ELFCLASS64, elf.EM_X86_64)
	out := filepath.Join(dir, "rescue.img")
	svc, err := service.Load("rescue", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = buildUpImage(context.Background(), upBuild{Service: "rescue", Svc: svc, Sets: []string{set}, Arch: "i386", Out: out})
	want := "the sets are for amd64, not i386: their init /rescue/init is an ELF program for machine EM_X86_64 (62): the release's i386 sets, verified, hold another port's programs (check --mirror, --version and --arch)"
	if err == nil || err.Error() != want {
		t.Fatalf("buildUpImage: %v, want %q", err, want)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an image was written: %v", err)
	}
	if _, err := buildUpImage(context.Background(), upBuild{Service: "rescue", Svc: svc, Sets: []string{set}, Arch: "amd64", Out: out}); err != nil {
		t.Errorf("amd64 sets for an amd64 release: %v", err)
	}
}

// imagecheckFsck runs e2fsck -fn on img, as imagebuilder's imagecheck.Fsck
// (internal to imagebuilder) does. Without e2fsprogs the test is skipped,
// which the test report lists (a log line was seen by no one, and CI,
// which installs e2fsprogs, allows no such skip); call it last, as a skip
// ends the test.
func imagecheckFsck(t *testing.T, img string) {
	t.Helper()
	if _, err := exec.LookPath("e2fsck"); err != nil {
		t.Skipf("e2fsck not installed (e2fsprogs): %v: the image is not checked", err)
	}
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
}

// TestUpLeavesOthersTemporaryFiles: up wrote and removed fixed names
// (<image>.tmp, <kernel>.tmp), so two ups at once destroyed each other's
// half-written files. Such a file, standing for another up's, survives.
func TestUpLeavesOthersTemporaryFiles(t *testing.T) {
	f := newFakeUp(t)
	opts := upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
	res, err := up(context.Background(), io.Discard, f.deps(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Make both the strip and the build run again.
	os.Remove(res.Kernel + ".sha512")
	os.Remove(res.Image)
	others := []string{res.Image + ".tmp", res.Kernel + ".tmp"}
	for _, p := range others {
		if err := os.WriteFile(p, []byte("another up's half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.calls = nil
	if _, err := up(context.Background(), io.Discard, f.deps(), opts); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); got != "service fetch strip build run" {
		t.Fatalf("calls %q: the strip and the build did not run again", got)
	}
	for _, p := range others {
		if b, err := os.ReadFile(p); err != nil || string(b) != "another up's half" {
			t.Errorf("%s: %q, %v; another up's file was touched", p, b, err)
		}
	}
	if b, _ := os.ReadFile(res.Image); !strings.HasPrefix(string(b), "image of ") {
		t.Errorf("image holds %q", b)
	}
}

// upAgain runs up once more with f's calls cleared and checks the calls
// it made; when one of them is a build, its log must give why.
func upAgain(t *testing.T, f *fakeUp, opts upOptions, calls, why string) {
	t.Helper()
	f.calls = nil
	var log bytes.Buffer
	if _, err := up(context.Background(), &log, f.deps(), opts); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); got != calls {
		t.Errorf("calls %q, want %q\n%s", got, calls, log.String())
	}
	if strings.Contains(calls, "build") && !strings.Contains(log.String(), why) {
		t.Errorf("log does not say why the image was rebuilt:\n%s", log.String())
	}
}

// TestUpForeignImageBeforeDownload: an -i file that is no ext2 image and
// that up did not build is refused before any download (docs/commands.md:
// files are checked before any work); it was refused only by the mkimg step,
// after the download and the strip. One up built, which something wrote
// over since, is still up's to rebuild: it gets as far as the download
// (an unreachable mirror here).
func TestUpForeignImageBeforeDownload(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	foreign, ours := filepath.Join(dir, "mine.img"), filepath.Join(dir, "ours.img")
	for _, p := range []string{foreign, ours} {
		if err := os.WriteFile(p, []byte("the user's own file, not an image"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rel := filepath.Join(cache, fetch.DefaultVersion, fetch.DefaultArch)
	if err := rebuild.DirStamp(rel, ours).Record(ours, rebuild.FilesDigest, imagebuilder.Revision, ""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		image, want string
	}{
		{foreign, "smolvmm up: image " + foreign + " is not an ext2 image, and up did not build it: up replaces only images it built; move it away, or give another image with -i"},
		{ours, "cannot reach the mirror"},
	}
	for _, tt := range tests {
		if tt.image == ours && !kvmUsable() {
			t.Logf("up -i %s not tried: KVM unusable here, and up checks it before its download", filepath.Base(ours))
			continue
		}
		_, stderr, status := runCLI(t, "up", "--cache", cache, "--mirror", "http://127.0.0.1:1/pub", "-i", tt.image, "rescue")
		if status != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("up -i %s: status %d, stderr:\n%s\nwant status 1 and %q", filepath.Base(tt.image), status, stderr, tt.want)
		}
		if tt.image == foreign && strings.Contains(stderr, "fetch") {
			t.Errorf("up -i %s went on to the fetch:\n%s", filepath.Base(tt.image), stderr)
		}
		if b, _ := os.ReadFile(tt.image); string(b) != "the user's own file, not an image" {
			t.Errorf("up -i %s changed the file", filepath.Base(tt.image))
		}
	}
}

// TestUpSaysHowLongTheRunRanOnlyIfItRan: "run ended after" follows a run
// whose machine started, whatever its end; a run that failed before its
// machine started (its image locked by another VM) says only its error,
// unchanged, not a time for a VM that never ran.
func TestUpSaysHowLongTheRunRanOnlyIfItRan(t *testing.T) {
	inUse := errors.New("ld0: disk image x.img is in use by another VM")
	tests := []struct {
		name    string
		err     error
		wantErr string
		ended   bool
	}{
		{"ran and ended", nil, "", true},
		{"ran and failed", cli.Exit("", 3), "", true},
		{"never started", vmNotStarted(inUse), inUse.Error(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUp(t)
			d := f.deps()
			d.run = func(ctx context.Context, kernel, image string) error { return tt.err }
			var log bytes.Buffer
			_, err := up(context.Background(), &log, d, upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "x.img")})
			if (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.wantErr != "" && advise(err) != tt.wantErr {
				t.Errorf("err says %q, want %q", advise(err), tt.wantErr)
			}
			if got := strings.Contains(log.String(), "ended after"); got != tt.ended {
				t.Errorf("log says how long the run ran: %v, want %v:\n%s", got, tt.ended, log.String())
			}
		})
	}
}

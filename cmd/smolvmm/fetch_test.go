package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// testApp is the binary's app (newApp) with only cmds, writing to stdout
// and stderr, and returning errors instead of exiting the test process.
func testApp(cmds []*cli.Command, stdout, stderr io.Writer) *cli.App {
	app := newApp(cmds)
	app.Writer, app.ErrWriter = stdout, stderr
	app.ExitErrHandler = func(*cli.Context, error) {}
	return app
}

// runTestApp runs the CLI with only the given commands and returns its
// output (stdout and stderr).
func runTestApp(t *testing.T, cmds []*cli.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := testApp(cmds, &out, &out).Run(append([]string{"smolvmm"}, args...))
	return out.String(), err
}

func TestFetchCommand(t *testing.T) {
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel"),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet(), "base.tar.xz": []byte("base")}})
	defer srv.Close()
	cache := t.TempDir()
	args := []string{"fetch", "--mirror", srv.Mirror(), "--cache", cache}

	tests := []struct {
		name    string
		args    []string
		want    []string // substrings of the output, in order
		wantErr string
		reqs    int
	}{
		{"first run downloads", nil, []string{"netbsd-GENERIC.gz: downloaded, 6 B", "rescue.tgz: downloaded", filepath.Join(cache, "9.3", "i386", "sets", "rescue.tgz")}, "", 4},
		{"second run is cached", nil, []string{"netbsd-GENERIC.gz: cached", "rescue.tgz: cached"}, "", 0},
		{"named sets", []string{"rescue", "base"}, []string{"rescue.tgz: cached", "base.tar.xz: downloaded, 4 B"}, "", 1},
		// Verified and printed once (it was twice).
		{"a set named twice", []string{"rescue", "rescue"}, []string{"rescue.tgz: cached"}, "", 0},
		// The cached SHA512 lacks it: fetched once more (the mirror may
		// have corrected it), and the set is unknown to that one too.
		{"unknown set", []string{"games"}, nil, `unknown set "games": the release's SHA512 lists base, rescue`, 1},
		{"unknown version", []string{"--version", "8.0"}, nil, `version "8.0"`, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetLog()
			// Flags must precede the sets.
			var flags, sets []string
			for i := 0; i < len(tt.args); i++ {
				if strings.HasPrefix(tt.args[i], "--") {
					flags = append(flags, tt.args[i], tt.args[i+1])
					i++
				} else {
					sets = append(sets, tt.args[i])
				}
			}
			a := append(append(append([]string(nil), args...), flags...), sets...)
			out, err := runTestApp(t, []*cli.Command{fetchCommand()}, a...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(out, "rescue.tgz:"); tt.wantErr == "" && n != 1 {
				t.Errorf("rescue.tgz printed %d times, want once:\n%s", n, out)
			}
			rest := out
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			if n := len(srv.Requests()); n != tt.reqs {
				t.Errorf("%d requests, want %d: %v", n, tt.reqs, srv.Requests())
			}
		})
	}
	if _, err := os.Stat(filepath.Join(cache, "8.0")); !os.IsNotExist(err) {
		t.Error("a cache directory was left for a version that does not exist")
	}
}

func TestTerminalProgress(t *testing.T) {
	var out bytes.Buffer
	p := terminalProgress(&out)("rescue.tgz", 4096, 1024)
	p.Write(make([]byte, 3072))
	p.Close()
	// It starts at the resumed 25% and clears its line when done, so the
	// per-file summary that follows stands alone.
	s := out.String()
	if !strings.Contains(s, "rescue.tgz 1.0 KiB of 4.0 KiB  25%") || !strings.HasSuffix(s, strings.Repeat(" ", 20)+"\r") {
		t.Errorf("progress output %q: want the name at 25%% and a cleared line at the end", s)
	}
}

// Offline, a cached set that fails its SHA512 check is removed: the
// command says so before the download's network error.
func TestFetchCommandCorruptCacheOffline(t *testing.T) {
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel"),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	cache := t.TempDir()
	args := []string{"fetch", "--mirror", srv.Mirror(), "--cache", cache}
	if _, err := runTestApp(t, []*cli.Command{fetchCommand()}, args...); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := os.WriteFile(filepath.Join(cache, "9.3", "i386", "sets", "rescue.tgz"), []byte("corrupt"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runTestApp(t, []*cli.Command{fetchCommand()}, args...)
	if !errors.Is(err, fetch.ErrNetwork) {
		t.Fatalf("err = %v, want a network error", err)
	}
	if want := "smolvmm fetch: cached rescue.tgz did not match its SHA512 (removed); downloading it again\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

// TestFetchCommandResumeLines: the line for a download cut and continued
// in the same run said "resumed, ... (N received now, 0 B kept from an
// earlier download)"; only bytes kept from an earlier run make a resume.
func TestFetchCommandResumeLines(t *testing.T) {
	kernel := bytes.Repeat([]byte("0123456789"), 1000)
	kpath := fetchtest.KernelPath("9.3", "i386", fetch.KernelName)
	tests := []struct {
		name  string
		seed  int // bytes of the kernel left in its .part by an earlier run
		fault fetchtest.Fault
		want  string
	}{
		{"cut in this run", 0, fetchtest.Fault{TruncateAt: 4000, Times: 1}, "netbsd-GENERIC.gz: downloaded (resumed after a break), 9.8 KiB in "},
		{"earlier run's partial", 4096, fetchtest.Fault{}, "netbsd-GENERIC.gz: resumed, 9.8 KiB (5.8 KiB received now, 4.0 KiB kept from an earlier download) in "},
		{"earlier partial, then cut", 4096, fetchtest.Fault{TruncateAt: 1024, Times: 1}, "netbsd-GENERIC.gz: resumed (and again after a break in this run), 9.8 KiB (5.8 KiB received now, 4.0 KiB kept from an earlier download) in "},
		// A mirror that ignores Range resumed nothing.
		{"cut, then restarted", 0, fetchtest.Fault{TruncateAt: 4000, Times: 1, Then: &fetchtest.Fault{IgnoreRange: true}}, "netbsd-GENERIC.gz: downloaded (restarted after a break: the mirror cannot resume), 9.8 KiB in "},
		{"earlier partial, restarted", 4096, fetchtest.Fault{IgnoreRange: true}, "netbsd-GENERIC.gz: downloaded (started over: the mirror cannot resume the earlier partial download), 9.8 KiB in "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: kernel,
				Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
			defer srv.Close()
			cache := t.TempDir()
			if tt.seed > 0 {
				part := filepath.Join(cache, "9.3", "i386", "kernel", fetch.KernelName+".part")
				if err := os.MkdirAll(filepath.Dir(part), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(part, kernel[:tt.seed], 0o644); err != nil {
					t.Fatal(err)
				}
			}
			srv.SetFault(kpath, tt.fault)
			out, err := runTestApp(t, []*cli.Command{fetchCommand()}, "fetch", "--mirror", srv.Mirror(), "--cache", cache)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

// TestFetchCommandElsewhere: a --mirror one level above the trees, or
// one whose releases moved to NetBSD-archive/, got a bare 404 or a list
// of versions without the archived one; the advice names the --mirror to
// try instead.
func TestFetchCommandElsewhere(t *testing.T) {
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel"),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	defer srv.Close()
	srv.SetFile("NetBSD-archive/NetBSD-9.2/i386/binary/kernel/SHA512", []byte("x"))
	above := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/pub/" {
			io.WriteString(w, `<a href="NetBSD/">NetBSD/</a>`)
			return
		}
		http.NotFound(w, r)
	}))
	defer above.Close()
	for _, tt := range []struct {
		name, mirror, version, want string
	}{
		{"one level too high", above.URL + "/pub", "9.3", "(try --mirror " + above.URL + "/pub/NetBSD)"},
		{"archived release", srv.Mirror(), "9.2", "(try --mirror " + srv.Mirror() + "/NetBSD-archive)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runTestApp(t, []*cli.Command{fetchCommand()}, "fetch", "--mirror", tt.mirror, "--version", tt.version, "--cache", t.TempDir())
			if !errors.Is(err, fetch.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			if msg := advise(err); !strings.HasSuffix(msg, tt.want) {
				t.Errorf("message %q, want it to end %q", msg, tt.want)
			}
		})
	}
}

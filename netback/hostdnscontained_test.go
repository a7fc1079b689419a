package netback

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// TestContainedHubRereadsThroughReadHostFiles: a contained hub, whose
// filter refuses open, reads the host's files itself at its start only,
// then looks at them through HubConfig.ReadHostFiles at the same cadence
// as an uncontained one: their stamps at most once a second, their
// content only when the stamps changed. A failed look keeps what was
// read last, and is logged once.
func TestContainedHubRereadsThroughReadHostFiles(t *testing.T) {
	hostFilesIn(t, t.TempDir()) // hostdnsreread_test.go
	if err := os.WriteFile(hostsPath, []byte("192.0.2.1 pinned.test.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(resolvConfPath, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := ReadHostFiles(false)

	// The broker's files, as the fake serves them: the start's, until
	// changed.
	var mu sync.Mutex
	served := HostFiles{
		Hosts:      HostFile{Stamp: start.Hosts.Stamp, Content: []byte("192.0.2.1 pinned.test.\n")},
		ResolvConf: HostFile{Stamp: start.ResolvConf.Stamp, Content: []byte("nameserver 192.0.2.53\n")},
	}
	var calls []bool
	var fail error
	read := func(content bool) (HostFiles, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, content)
		if fail != nil {
			return HostFiles{}, fail
		}
		f := served
		if !content {
			f.Hosts.Content, f.ResolvConf.Content = nil, nil
		}
		return f, nil
	}
	var logMu sync.Mutex
	var logged []string
	h := startContainedHub(t, read, func(format string, args ...any) {
		logMu.Lock()
		logged = append(logged, fmt.Sprintf(format, args...))
		logMu.Unlock()
	})
	defer h.Close()
	r := h.gw.resolver
	server := func() string {
		c := r.config()
		return strings.Join(c.servers, ",")
	}
	takeCalls := func() []bool {
		mu.Lock()
		defer mu.Unlock()
		c := calls
		calls = nil
		return c
	}

	// The local files change, but a contained hub no longer reads them:
	// only what ReadHostFiles says counts.
	if err := os.WriteFile(resolvConfPath, []byte("nameserver 192.0.2.99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := server(); got != "192.0.2.53:53" {
		t.Fatalf("at start: servers %s, want 192.0.2.53:53", got)
	}
	if c := takeCalls(); len(c) != 0 {
		t.Errorf("within a second of the start: ReadHostFiles called %v, want not", c)
	}
	lookedLongAgo(r)
	if got := server(); got != "192.0.2.53:53" {
		t.Errorf("stamps unchanged: servers %s, want 192.0.2.53:53", got)
	}
	if c := takeCalls(); fmt.Sprint(c) != "[false]" {
		t.Errorf("stamps unchanged: ReadHostFiles called %v, want [false] (stamps only)", c)
	}

	// NetworkManager replaces resolv.conf: a new inode.
	mu.Lock()
	served.ResolvConf = HostFile{Stamp: HostFileStamp{Present: true, Ino: start.ResolvConf.Stamp.Ino + 1, Size: 23}, Content: []byte("nameserver 192.0.2.54\n")}
	mu.Unlock()
	if got := server(); got != "192.0.2.53:53" {
		t.Errorf("less than a second after the last look: servers %s, want 192.0.2.53:53 still", got)
	}
	lookedLongAgo(r)
	if got := server(); got != "192.0.2.54:53" {
		t.Errorf("on the next look after resolv.conf changed: servers %s, want 192.0.2.54:53", got)
	}
	if c := takeCalls(); fmt.Sprint(c) != "[false true]" {
		t.Errorf("after resolv.conf changed: ReadHostFiles called %v, want [false true]", c)
	}

	// A broker gone: the configuration read last is kept, said once.
	mu.Lock()
	fail = errors.New("broker: ended")
	served.ResolvConf = HostFile{Stamp: HostFileStamp{Present: true, Ino: 7}, Content: []byte("nameserver 192.0.2.55\n")}
	mu.Unlock()
	for range 2 {
		lookedLongAgo(r)
		if got := server(); got != "192.0.2.54:53" {
			t.Errorf("ReadHostFiles failing: servers %s, want 192.0.2.54:53 kept", got)
		}
	}
	logMu.Lock()
	n := 0
	for _, l := range logged {
		if strings.Contains(l, "not looked at again: broker: ended") {
			n++
		}
	}
	logMu.Unlock()
	if n != 1 {
		t.Errorf("the failure logged %d times, want once; log %q", n, logged)
	}
	mu.Lock()
	fail = nil
	mu.Unlock()
	lookedLongAgo(r)
	if got := server(); got != "192.0.2.55:53" {
		t.Errorf("ReadHostFiles working again: servers %s, want 192.0.2.55:53", got)
	}
}

// startContainedHub starts a contained hub, as a daemon under its filter
// runs one, that looks at the host's files through read, as through its
// broker, and logs through logf. The caller closes it.
func startContainedHub(t *testing.T, read func(content bool) (HostFiles, error), logf func(format string, args ...any)) *Hub {
	t.Helper()
	h, err := NewHub(HubConfig{
		Socket:        filepath.Join(testsock.Dir(t), "net.sock"),
		Contained:     true,
		WriteLeases:   func([]byte) error { return nil },
		ReadHostFiles: read,
		Logf:          logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// lowerMaxHostFileSize makes maxHostFileSize n for the test: a file
// longer than MaxHostFileSize would be 64 MiB.
func lowerMaxHostFileSize(t *testing.T, n int) {
	old := maxHostFileSize
	maxHostFileSize = n
	t.Cleanup(func() { maxHostFileSize = old })
}

// TestReadHostFiles: each file is read through one descriptor, at most
// MaxHostFileSize of it (lowered here), cut after its last whole line
// within that bound; one missing, a directory or a FIFO (which would
// block an open) is a zero HostFile; without content, the stamps alone.
func TestReadHostFiles(t *testing.T) {
	defer func(h, r string) { hostsPath, resolvConfPath = h, r }(hostsPath, resolvConfPath)
	const bound = 4096
	lowerMaxHostFileSize(t, bound)
	line := "192.0.2.1 name.test.\n"
	long := strings.Repeat(line, bound/len(line)+10)
	within := long[:bound/len(line)*len(line)]
	for _, tt := range []struct {
		name    string
		make    func(path string) error
		present bool
		content string
		cut     bool
	}{
		{"missing", func(string) error { return nil }, false, "", false},
		{"small", func(p string) error { return os.WriteFile(p, []byte(line), 0o644) }, true, line, false},
		{"empty", func(p string) error { return os.WriteFile(p, nil, 0o644) }, true, "", false},
		{"at the bound", func(p string) error { return os.WriteFile(p, []byte(long[:bound]), 0o644) }, true, long[:bound], false},
		{"longer", func(p string) error { return os.WriteFile(p, []byte(long), 0o644) }, true, within, true},
		{"one long line", func(p string) error { return os.WriteFile(p, bytes.Repeat([]byte("x"), bound+1), 0o644) }, true, "", true},
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }, false, "", false},
		{"FIFO", func(p string) error { return syscall.Mkfifo(p, 0o644) }, false, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			hostsPath, resolvConfPath = filepath.Join(dir, "hosts"), filepath.Join(dir, "none")
			if err := tt.make(hostsPath); err != nil {
				t.Fatal(err)
			}
			done := make(chan [2]HostFiles)
			go func() { done <- [2]HostFiles{ReadHostFiles(false), ReadHostFiles(true)} }()
			var got [2]HostFiles
			select {
			case got = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("ReadHostFiles did not return")
			}
			stamps, full := got[0], got[1]
			if full.ResolvConf.Stamp.Present || full.ResolvConf.Content != nil {
				t.Errorf("a missing resolv.conf: %+v, want a zero HostFile", full.ResolvConf)
			}
			f := full.Hosts
			if f.Stamp.Present != tt.present || string(f.Content) != tt.content || f.Cut != tt.cut {
				t.Errorf("content: present %v, %d bytes, cut %v; want %v, %d bytes, cut %v", f.Stamp.Present, len(f.Content), f.Cut, tt.present, len(tt.content), tt.cut)
			}
			if tt.present {
				if st, err := os.Stat(hostsPath); err != nil || f.Stamp.Size != st.Size() || f.Stamp.Mtime != st.ModTime().UnixNano() || f.Stamp.Ino != st.Sys().(*syscall.Stat_t).Ino {
					t.Errorf("stamp %+v; the file's stat %v, %v", f.Stamp, st, err)
				}
			}
			if stamps.Hosts.Stamp != f.Stamp || stamps.Hosts.Content != nil {
				t.Errorf("without content: %+v, %d bytes; want the stamp %+v alone", stamps.Hosts.Stamp, len(stamps.Hosts.Content), f.Stamp)
			}
		})
	}
}

// TestHubLogsCutHostsFile: a hub whose hosts file is longer than
// MaxHostFileSize (lowered here) at its start says so, naming the file,
// its size and the bound.
func TestHubLogsCutHostsFile(t *testing.T) {
	hostFilesIn(t, t.TempDir()) // hostdnsreread_test.go
	lowerMaxHostFileSize(t, 4096)
	big := bytes.Repeat([]byte("192.0.2.1 name.test.\n"), 4096/21+1)
	if err := os.WriteFile(hostsPath, big, 0o644); err != nil {
		t.Fatal(err)
	}
	var logged []string
	var mu sync.Mutex
	h, err := NewHub(HubConfig{Socket: filepath.Join(testsock.Dir(t), "net.sock"), Logf: func(format string, args ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(format, args...))
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	want := fmt.Sprintf("DNS: %s is %d bytes long; only its lines within the first 4096 bytes are read", hostsPath, len(big))
	mu.Lock()
	defer mu.Unlock()
	for _, l := range logged {
		if l == want {
			return
		}
	}
	t.Errorf("log %q; want a line %q", logged, want)
}

package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/snapshot"
)

// The test binary is its own broker (brokerStart runs /proc/self/exe),
// as smolvmm is.
func init() { maybeBrokerMain() }

// startTestBroker starts a broker under its filter, a shared network's
// (with a socket) or a VMM's, holding a directory of its own.
func startTestBroker(t *testing.T, network bool) *broker {
	t.Helper()
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a := brokerArgs{files: snapshot.Files{File: "n.leases", Temps: [2]string{".a.tmp", ".b.tmp"},
		TempIDs: [2]snapshot.FileID{{Dev: 1, Ino: 1}, {Dev: 1, Ino: 2}}}}
	if network {
		a.socket, a.socketID = filepath.Join(dir, "n.sock"), snapshot.FileID{Dev: 1, Ino: 3}
	}
	b, err := brokerStart(a, d, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestBrokerHostFiles: a shared network's broker, under its filter,
// answers 'r' with the host's hosts file and resolv.conf as this process
// reads them (their stamps, and their content when asked); it refuses a
// malformed request, and a VMM's broker refuses the request, without
// ending.
func TestBrokerHostFiles(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the seccomp filter is linux/amd64's")
	}
	b := startTestBroker(t, true)
	for _, content := range []bool{true, false} {
		got, err := b.hostFiles(content)
		if err != nil {
			t.Fatalf("hostFiles(%v): %v", content, err)
		}
		want := netback.ReadHostFiles(content)
		for _, f := range []struct {
			name      string
			got, want netback.HostFile
		}{{"/etc/hosts", got.Hosts, want.Hosts}, {"/etc/resolv.conf", got.ResolvConf, want.ResolvConf}} {
			if f.got.Stamp != f.want.Stamp || !bytes.Equal(f.got.Content, f.want.Content) || (f.got.Content == nil) != (f.want.Content == nil) || f.got.Cut != f.want.Cut {
				t.Errorf("content %v: %s: %+v, %d bytes, cut %v; read here %+v, %d bytes, cut %v",
					content, f.name, f.got.Stamp, len(f.got.Content), f.got.Cut, f.want.Stamp, len(f.want.Content), f.want.Cut)
			}
		}
		if content && want.ResolvConf.Stamp.Present && len(got.ResolvConf.Content) == 0 && want.ResolvConf.Stamp.Size > 0 {
			t.Errorf("resolv.conf's content missing")
		}
	}
	for _, req := range [][]byte{
		{opHostFiles},
		{opHostFiles, 2},
		{opHostFiles, 1, 0},
		[]byte("r/etc/shadow"),
	} {
		if _, err := b.exchange(req, true); !errors.Is(err, unix.EINVAL) {
			t.Errorf("request %q: %v; want %v", req, err, unix.EINVAL)
		}
	}
	if _, err := b.hostFiles(true); err != nil {
		t.Errorf("after the refusals: %v", err)
	}
	vmm := startTestBroker(t, false)
	if _, err := vmm.hostFiles(false); !errors.Is(err, unix.EINVAL) {
		t.Errorf("a VMM's broker: %v; want %v", err, unix.EINVAL)
	}
	if err := vmm.request(opDiscard); err != nil {
		t.Errorf("a VMM's broker after the refusal: %v", err)
	}
}

// TestParseHostFiles: an 'r' answer's data is read back as laid out, and
// one cut short, longer than it says, or with content not asked for is
// refused.
func TestParseHostFiles(t *testing.T) {
	files := netback.HostFiles{
		Hosts:      netback.HostFile{Stamp: netback.HostFileStamp{Present: true, Ino: 12, Size: 23, Mtime: 1e18, Ctime: -5}, Content: []byte("192.0.2.1 a.test.\n"), Cut: true},
		ResolvConf: netback.HostFile{},
	}
	data := hostFilesData(files)
	got, err := parseHostFiles(data, true)
	if err != nil || got.Hosts.Stamp != files.Hosts.Stamp || string(got.Hosts.Content) != string(files.Hosts.Content) || !got.Hosts.Cut || got.ResolvConf.Stamp.Present || len(got.ResolvConf.Content) != 0 {
		t.Errorf("parseHostFiles(hostFilesData(%+v)) = %+v, %v", files, got, err)
	}
	for name, bad := range map[string][]byte{
		"short":  data[:len(data)-1],
		"longer": append(append([]byte(nil), data...), 0),
		"empty":  nil,
	} {
		if _, err := parseHostFiles(bad, true); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := parseHostFiles(data, false); err == nil {
		t.Error("content not asked for: no error")
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/fetch/fetchtest"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/kstrip"
	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestLibraryFactsGetAdvice: the libraries' errors state facts, and this
// program adds what to do, as the libraries' text once did itself: the
// advice is in advise's message, not in the error's.
func TestLibraryFactsGetAdvice(t *testing.T) {
	dir := t.TempDir()
	fwd := func(s string) netback.Forward {
		f, err := netback.ParseForward(s)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	errOf := func(_ any, err error) error { return err }
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		err    error
		advice string
	}{
		{"mirror answered HTML", fmt.Errorf("fetch: %w", &fetch.HTMLError{URL: "http://m/rescue.tgz", ContentType: "text/html", File: "rescue.tgz"}),
			"(check --mirror and any proxy or captive portal)"},
		{"host port twice", netback.CheckForwards([]netback.Forward{fwd("8080:80"), fwd("8080:81")}), "(give each host port once)"},
		{"lease lock a symlink", hubStartError(fmt.Errorf("lease file's lock /l.lock: %w: %w", netback.ErrLeasesUnsafe, netback.ErrLeasesLockLink)),
			"(remove that symbolic link: the network makes its lock itself)"},
		{"disk option twice", errOf(blk.ParseDiskSpec("b.img,serial=ab,serial=cd")), "(give each option once)"},
		{"disk a directory", errOf(blk.Open(dir, blk.Options{ReadOnly: true})), "(give a raw image file)"},
		{"kernel text", fmt.Errorf("kstrip: k: %w", errOf(kstrip.Parse([]byte("hello, no kernel here")))), "(give an uncompressed or gzipped NetBSD kernel)"},
		{"kernel empty", errOf(kstrip.ReadFile(emptyFile)), "(give an uncompressed or gzipped NetBSD kernel)"},
		{"kernel xz", fmt.Errorf("kstrip: k: %w", errOf(kstrip.Parse([]byte("\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4F")))), "(give an uncompressed or gzipped NetBSD kernel)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("no error")
			}
			a := strings.TrimSuffix(strings.TrimPrefix(tt.advice, "("), ")")
			if strings.Contains(tt.err.Error(), a) {
				t.Errorf("the library's error %q has the advice %q", tt.err, a)
			}
			if got := advise(tt.err); !strings.HasSuffix(got, " "+tt.advice) || strings.Count(got, a) != 1 {
				t.Errorf("advise: %q, want it to end %q, once", got, tt.advice)
			}
		})
	}
}

// TestKstripFactsGetAdvice: kstrip says a kernel is stripped, and this
// program which kernel to give instead, once.
func TestKstripFactsGetAdvice(t *testing.T) {
	data, err := os.ReadFile(testKernel(t, kstriptest.Options{Bits: 32, Stripped: true}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = kstrip.Parse(data)
	const a = "give a NetBSD release kernel, such as netbsd-GENERIC, which keeps its symbols"
	if !errors.Is(err, kstrip.ErrNoSymbols) || strings.Contains(err.Error(), "use ") {
		t.Fatalf("Parse: %v, want ErrNoSymbols without advice", err)
	}
	if got := advise(fmt.Errorf("kstrip: k: %w", err)); !strings.HasSuffix(got, " ("+a+")") || strings.Count(got, a) != 1 {
		t.Errorf("advise: %q, want it to end (%s), once", got, a)
	}
	// Not up's: its user gave no kernel.
	if got := advise(mirrorKernelError("k", err)); strings.Contains(got, a) {
		t.Errorf("advise: %q, want no kernel asked of up's user", got)
	}
}

// TestLeasesLockLinkAdviceAlone: a symbolic link where the lease file's
// lock goes gets its own advice, not --leases' besides (the lock is
// ErrLeasesUnsafe too, whose advice is for the lease file).
func TestLeasesLockLinkAdviceAlone(t *testing.T) {
	err := hubStartError(fmt.Errorf("lease file's lock /l.lock: %w: %w", netback.ErrLeasesUnsafe, netback.ErrLeasesLockLink))
	const want = "(remove that symbolic link: the network makes its lock itself)"
	if got := advise(err); !strings.HasSuffix(got, " "+want) || strings.Contains(got, "--leases") || strings.Count(got, "(") != 1 {
		t.Errorf("advise: %q, want only %q", got, want)
	}
}

// An HTML answer gets its own advice, not ErrHTTP's besides; up's error
// about the release's kernel none of kstrip's, as up's user gave no
// kernel.
func TestLibraryAdviceNotDoubled(t *testing.T) {
	html := advise(&fetch.HTMLError{URL: "http://m/rescue.tgz", ContentType: "text/html", File: "rescue.tgz"})
	if strings.Count(html, "check --mirror") != 1 {
		t.Errorf("advise: %q, want check --mirror once", html)
	}
	path := filepath.Join(t.TempDir(), "netbsd-GENERIC.gz")
	if err := os.WriteFile(path, []byte("<html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := kstrip.Parse([]byte("<html>mirror error page</html>"))
	if got := advise(mirrorKernelError(path, fmt.Errorf("%s: %w", path, err))); strings.Contains(got, "give an uncompressed") {
		t.Errorf("advise: %q, want no kernel asked of up's user", got)
	}
}

// TestFetchFactsGetAdvice: fetch's errors about the mirror state facts,
// and advise adds what to do, once (it rewrote fetch's own "check the
// mirror URL" and "try another mirror" into the flags' words).
func TestFetchFactsGetAdvice(t *testing.T) {
	html := fetchtest.Fault{Status: 200, ContentType: "text/html", Body: []byte("<!DOCTYPE html><html>wifi</html>")}
	tests := []struct {
		name   string
		rel    string // the file served wrong
		fault  fetchtest.Fault
		advice string
	}{
		{"digest file HTML", fetchtest.KernelPath("9.3", "i386", "SHA512"), html,
			"check --mirror: it must point at a NetBSD release tree such as " + fetch.DefaultMirror},
		{"digest file garbage", fetchtest.KernelPath("9.3", "i386", "SHA512"), fetchtest.Fault{Status: 200, Body: []byte("no digests")},
			"check --mirror: it must point at a NetBSD release tree such as " + fetch.DefaultMirror},
		{"digest mismatch", fetchtest.SetsPath("9.3", "i386", "rescue.tgz"), fetchtest.Fault{Status: 200, Body: []byte("other bytes")},
			"run again or try another --mirror"},
		{"unlabelled HTML", fetchtest.SetsPath("9.3", "i386", "rescue.tgz"), fetchtest.Fault{Status: 200, ContentType: "application/octet-stream", Body: []byte("\n<!DOCTYPE HTML>\n<html>503</html>")},
			"check --mirror and any proxy or captive portal"},
		{"no network", "", fetchtest.Fault{}, "check the network connection, HTTPS_PROXY/HTTP_PROXY, or --mirror"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("k"),
				Sets: map[string][]byte{"rescue.tgz": []byte("r")}})
			defer srv.Close()
			if tt.rel != "" {
				srv.SetFault(tt.rel, tt.fault)
			} else {
				srv.Close()
			}
			f := &fetch.Fetcher{Mirror: srv.Mirror(), Cache: t.TempDir()}
			_, err := f.Fetch(context.Background(), "9.3", "i386", "rescue.tgz")
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "check ") || strings.Contains(err.Error(), "run again") || strings.Contains(err.Error(), "mirror URL") {
				t.Errorf("fetch's error %q advises", err)
			}
			if got := advise(err); !strings.HasSuffix(got, " ("+tt.advice+")") || strings.Count(got, tt.advice) != 1 || strings.Count(got, "(") != strings.Count(err.Error(), "(")+1 {
				t.Errorf("advise: %q, want it to end (%s), once, and no other advice", got, tt.advice)
			}
		})
	}
}

// TestLoaderFactsGetAdvice: the loaders say what did not fit, vmm which
// Config field, and advise which flag to change, once: multiboot's window
// for module command lines, and guest memory too small for the kernel.
func TestLoaderFactsGetAdvice(t *testing.T) {
	tests := []struct {
		name   string
		cfg    vmm.Config
		advice string
	}{
		{"loader window full", vmm.Config{Kernel: "demo", KernelImage: guests.Demo, Boot: bootplan.Multiboot,
			Modules: []multiboot.Module{{Name: "m", Args: strings.Repeat("a", 0x9F000)}}},
			"pass fewer or shorter --module files and arguments, or -k a kernel with fewer section headers"},
		{"memory too small", vmm.Config{Kernel: "demo", KernelImage: guests.Demo, Boot: bootplan.Multiboot,
			Modules: []multiboot.Module{{Name: "m", Data: make([]byte, 8<<20)}}, MemoryMiB: 4},
			"give -m "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := vmm.New(tt.cfg)
			if err == nil {
				m.Close()
				t.Fatal("New succeeded")
			}
			var ve *vmm.Error
			if !errors.As(err, &ve) {
				t.Fatalf("New: %v, want a *vmm.Error", err)
			}
			for _, a := range []string{"; pass", "; give", "strip section headers"} {
				if strings.Contains(ve.Err.Error(), a) {
					t.Errorf("the loader's error %q advises %q", ve.Err, a)
				}
			}
			got := advise(err)
			if !strings.Contains(got, " ("+tt.advice) || strings.Count(got, tt.advice) != 1 || strings.Count(got, "(") != strings.Count(ve.Err.Error(), "(")+1 {
				t.Errorf("advise: %q, want (%s...), once, and no other advice", got, tt.advice)
			}
		})
	}
}

// TestHubRefusalGetsAdvice: a shared network refuses a VM whose MAC is
// connected already by its reason code and the fact; the VM's side says
// what to give instead, once (the hub said "give each VM its own MAC",
// and backendError its --mac besides).
func TestHubRefusalGetsAdvice(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "n.sock")
	h, err := netback.NewHub(netback.HubConfig{Socket: sock, Leases: filepath.Join(dir, "n.leases"), Logf: func(string, ...any) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x5b, 0x00, 0x01}
	first, err := netback.Join(sock, mac, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := netback.Join(sock, mac, nil)
	if err == nil {
		second.Close()
		t.Fatal("the second join with the same MAC succeeded")
	}
	if strings.Contains(err.Error(), "give ") {
		t.Errorf("the hub's refusal %q advises", err)
	}
	const a = "(give this VM another --mac)"
	if got := advise(backendError("user:"+sock, err)); !strings.HasSuffix(got, "is connected already "+a) || strings.Count(got, "give ") != 1 {
		t.Errorf("advise: %q, want it to end %q, the only advice", got, a)
	}
	busy := fmt.Errorf("net: %w", &netback.RefusedError{Socket: sock, Reason: netback.RefusedBusy, Message: "the network has 12 connections whose handshake is not over, the most it takes at once"})
	if got := advise(backendError("user:"+sock, busy)); !strings.HasSuffix(got, "the most it takes at once (try again once fewer VMs are joining)") {
		t.Errorf("advise: %q, want the advice to try again, once", got)
	}
}

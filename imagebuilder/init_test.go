package imagebuilder_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

func TestFindInit(t *testing.T) {
	exe := func() *fstree.Node { return fstree.NewFile(0o555, []byte("init")) }
	tests := []struct {
		name  string
		nodes map[string]*fstree.Node
		want  string // the init found; "" for none
		why   string // part of the error when none
	}{
		{"sbin/init", map[string]*fstree.Node{"sbin/init": exe()}, "/sbin/init", ""},
		{"oinit", map[string]*fstree.Node{"sbin/oinit": exe()}, "/sbin/oinit", ""},
		{"init.bak", map[string]*fstree.Node{"sbin/init.bak": exe()}, "/sbin/init.bak", ""},
		{"rescue only", map[string]*fstree.Node{"rescue/init": exe()}, "/rescue/init", ""},
		{"first wins", map[string]*fstree.Node{"rescue/init": exe(), "sbin/init.bak": exe()}, "/sbin/init.bak", ""},
		{"absolute symlink", map[string]*fstree.Node{"sbin/init": fstree.NewSymlink("/rescue/init"), "rescue/init": exe()}, "/sbin/init", ""},
		{"sbin a symlink to rescue", map[string]*fstree.Node{"sbin": fstree.NewSymlink("rescue"), "rescue/init": exe()}, "/sbin/init", ""},
		{"relative symlink up", map[string]*fstree.Node{"sbin/init": fstree.NewSymlink("../rescue/init"), "rescue/init": exe()}, "/sbin/init", ""},
		// The kernel resolves ".." at the root to the root.
		{"relative symlink above the root", map[string]*fstree.Node{"sbin/init": fstree.NewSymlink("../../../../rescue/init"), "rescue/init": exe()}, "/sbin/init", ""},
		{"sbin climbing above the root", map[string]*fstree.Node{"sbin": fstree.NewSymlink("../../rescue"), "rescue/init": exe()}, "/sbin/init", ""},
		{"empty tree", nil, "", "/sbin/init: not found"},
		{"not executable", map[string]*fstree.Node{"sbin/init": fstree.NewFile(0o644, []byte("x"))}, "", "/sbin/init: not executable"},
		{"a directory", map[string]*fstree.Node{"sbin/init": fstree.NewDir(0o755)}, "", "/sbin/init: a directory"},
		{"dangling symlink", map[string]*fstree.Node{"sbin/init": fstree.NewSymlink("/rescue/init")}, "", "/sbin/init: /rescue not found"},
		{"symlink loop", map[string]*fstree.Node{"sbin/init": fstree.NewSymlink("init")}, "", "too many symlinks"},
		{"rescue is a file", map[string]*fstree.Node{"rescue": exe()}, "", "/rescue/init: /rescue is not a directory"},
		// A set's link names a path of its choosing: it is printed inert.
		{"link with control characters", map[string]*fstree.Node{"sbin/init": fstree.NewSymlink("/e\x1b[2J/init")}, "", `/sbin/init: /e\x1b[2J not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := fstree.New()
			for p, n := range tt.nodes {
				if err := tr.Put(p, n); err != nil {
					t.Fatal(err)
				}
			}
			got, err := imagebuilder.FindInit(tr)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("FindInit = %q, %v; want %s", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, imagebuilder.ErrNoInit) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("FindInit = %q, %v; want ErrNoInit saying %q", got, err, tt.why)
			}
			// Each path is said once, with what stands there.
			for _, p := range imagebuilder.InitPaths {
				if n := len(regexp.MustCompile(regexp.QuoteMeta(p)+`($|[^.\w])`).FindAllString(err.Error(), -1)); n != 1 {
					t.Errorf("FindInit's error names %s %d times, want once: %v", p, n, err)
				}
			}
		})
	}
}

// TestBuildNeedsInit: a set without init (a base.tgz without rescue, say)
// makes an image NetBSD cannot start: refused, nothing written.
func TestBuildNeedsInit(t *testing.T) {
	p := tarSet(t, []testsets.Entry{{
		Hdr:  tar.Header{Typeflag: tar.TypeReg, Name: "./etc/motd", Mode: 0o644, Size: 6},
		Data: []byte("hello\n"),
	}})
	out := filepath.Join(t.TempDir(), "root.img")
	cfg := imagebuilder.Config{Sets: []string{p}, Service: loadService(t, "rescue", ""), SizeMB: 10, Timestamp: ts}
	err := imagebuilder.Build(context.Background(), cfg, out)
	if !errors.Is(err, imagebuilder.ErrNoInit) || !strings.Contains(err.Error(), "/rescue/init") {
		t.Fatalf("Build: %v, want ErrNoInit naming /rescue/init", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an image was written: %v", err)
	}
}

// TestBuildInitArch: the port of the sets' init, read from its ELF
// header, decides the /dev numbers when no Arch is given and must be the
// Arch given. An amd64 set built with no Arch got i386's numbers
// (/dev/ksyms 101,0 where amd64's is 85,0; ld1a 19,8, amd64's ld0i).
func TestBuildInitArch(t *testing.T) {
	i386 := testsets.ELF(elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_386, 1000)
	amd64 := testsets.ELF(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_X86_64, 1000)
	for _, tc := range []struct {
		name     string
		init     []byte // the crunched /rescue/sh that /rescue/init links to
		sbinInit bool   // /sbin/init is a symlink to /rescue/init
		arch     string // Config.Arch
		want     string // Config.Arch after BuildTree
		ksyms    uint32
		err      string
	}{
		{"i386 found", i386, false, "", imagebuilder.ArchI386, 101, ""},
		{"amd64 found", amd64, false, "", imagebuilder.ArchAMD64, 85, ""},
		{"amd64 through a symlink", amd64, true, "", imagebuilder.ArchAMD64, 85, ""},
		{"amd64 given", amd64, false, imagebuilder.ArchAMD64, imagebuilder.ArchAMD64, 85, ""},
		{"big-endian header read as such", testsets.ELF(elf.ELFCLASS64, elf.ELFDATA2MSB, elf.EM_X86_64, 1000), false, "", imagebuilder.ArchAMD64, 85, ""},
		{"amd64 sets given as i386", amd64, false, imagebuilder.ArchI386, "", 0,
			"the sets are for amd64, not i386: their init /rescue/init is an ELF program for machine EM_X86_64 (62)"},
		{"i386 sets given as amd64", i386, true, imagebuilder.ArchAMD64, "", 0,
			"the sets are for i386, not amd64: their init /sbin/init is an ELF program for machine EM_386 (3)"},
		{"another machine", testsets.ELF(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_AARCH64, 1000), false, "", "", 0,
			"the sets are for no port images can be built for (i386 or amd64): their init /rescue/init is an ELF program for machine EM_AARCH64 (183)"},
		// The kernel runs a "#!" script as init too: its port is unknown.
		{"script", []byte("#!/rescue/sh\nexec /rescue/sh\n"), false, "", "", 101, ""},
		{"script given amd64", []byte("#!/rescue/sh\nexec /rescue/sh\n"), false, imagebuilder.ArchAMD64, imagebuilder.ArchAMD64, 85, ""},
		{"broken ELF header", append([]byte(elf.ELFMAG), bytes.Repeat([]byte{'x'}, 100)...), false, "", "", 101, ""},
		{"too short for a header", []byte(elf.ELFMAG), false, "", "", 101, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := testsets.Rescue(1000)
			es[0].Data, es[0].Hdr.Size = tc.init, int64(len(tc.init))
			if tc.sbinInit {
				es = append(es, testsets.Entry{Hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "./sbin/init", Linkname: "/rescue/init", Mode: 0o777}})
			}
			b, err := testsets.Bytes(es, "tar")
			if err != nil {
				t.Fatal(err)
			}
			set := filepath.Join(t.TempDir(), "rescue.tar")
			if err := os.WriteFile(set, b, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := imagebuilder.Config{Sets: []string{set}, Service: loadService(t, "rescue", ""), Arch: tc.arch, Timestamp: ts}
			tree, err := imagebuilder.BuildTree(context.Background(), &cfg)
			if tc.err != "" {
				var ae *imagebuilder.InitArchError
				if err == nil || err.Error() != tc.err || !errors.As(err, &ae) {
					t.Fatalf("BuildTree: %v, want the InitArchError %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Arch != tc.want {
				t.Errorf("Config.Arch = %q, want %q", cfg.Arch, tc.want)
			}
			if n, err := tree.Get("dev/ksyms"); err != nil || n.Major != tc.ksyms {
				t.Errorf("/dev/ksyms: %+v %v, want major %d", n, err, tc.ksyms)
			}
		})
	}
}

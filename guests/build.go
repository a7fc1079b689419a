package guests

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/smolvmm/smolvmm/internal/usercache"
)

//go:embed src
var sources embed.FS

// recipe says which sources make a guest and how it is linked.
type recipe struct {
	srcs []string
	// virt links at virtual 0xc0100000 (physical 0x100000) like NetBSD, with
	// position-independent code so it runs before any paging.
	virt bool
	// script replaces the default linker script.
	script string
	// elf64 builds srcs for x86-64 and links an ELF64 with link64.ld.
	elf64 bool
	// blob32 sources are built -m32 and linked with blob32.ld into the flat
	// file blob32.bin, which an elf64 guest's assembly includes (.incbin): its
	// 32-bit C code, which an x86-64 link cannot take as objects.
	blob32 []string
}

var runtimeSrcs = []string{"entry.S", "rt.c"}
var intrSrcs = []string{"intr.S", "intr.c"}

func withRuntime(extra ...string) []string {
	return append(append([]string{}, runtimeSrcs...), extra...)
}

// recipes are built on first use: the package is linked into smolvmm,
// whose every start would otherwise pay for this map (a few KiB at init).
var recipes = sync.OnceValue(func() map[string]recipe {
	return map[string]recipe{
		"demo":      {srcs: withRuntime("demo.c")},
		"demo-virt": {srcs: withRuntime("demo.c"), virt: true},
		"irq":       {srcs: withRuntime(append(intrSrcs, "irq.c")...)},
		"counter":   {srcs: withRuntime(append(intrSrcs, "counter.c")...)},
		"vblk":      {srcs: withRuntime(append(intrSrcs, "virtio.c", "vblk.c", "vblk_evil.c")...)},
		"vnet":      {srcs: withRuntime(append(intrSrcs, "virtio.c", "vnet.c")...)},
		"vtcp":      {srcs: withRuntime("virtio.c", "vtcp.c")},
		"bad":       {srcs: withRuntime("bad.c")},
		"hammer":    {srcs: withRuntime("hammer.c")},
		"frag":      {srcs: withRuntime("frag.c")},
		"up":        {srcs: withRuntime("virtio.c", "up.c")},
		"paging":    {srcs: withRuntime("paging.c", "iret.S"), virt: true},
		"nbboot": {srcs: []string{"nbentry.S", "rt.c", "nbinfo.c", "nbboot.c", "nbnote.S"},
			virt: true, script: "link-nb.ld"},
		"handoff": {srcs: withRuntime("handoff.c"), script: "link-handoff.ld"},
		"long64": {srcs: []string{"long64.S", "long64.c", "nbnote.S"}, elf64: true,
			blob32: []string{"rt.c", "nbinfo.c", "long64_32.c"}},
	}
})

var baseCFlags = []string{
	"-m32", "-march=i686", "-mgeneral-regs-only", "-ffreestanding", "-nostdlib",
	"-fno-stack-protector", "-fno-asynchronous-unwind-tables",
	"-fno-tree-loop-distribute-patterns", "-O2", "-Wall", "-Wextra", "-Werror",
}

var ldFlags = []string{
	"-m", "elf_i386", "-z", "max-page-size=0x1000", "-z", "noexecstack",
	"--no-warn-rwx-segments", "--build-id=none",
}

// cFlags64 builds the 64-bit code of elf64 guests, linked in the top 2 GiB
// as NetBSD/amd64 is (-mcmodel=kernel).
var cFlags64 = []string{
	"-m64", "-mgeneral-regs-only", "-ffreestanding", "-nostdlib", "-fno-stack-protector",
	"-fno-asynchronous-unwind-tables", "-fno-pic", "-mcmodel=kernel", "-mno-red-zone",
	"-O2", "-Wall", "-Wextra", "-Werror",
}

var ldFlags64 = []string{
	"-m", "elf_x86_64", "-z", "max-page-size=0x1000", "-z", "noexecstack",
	"--no-warn-rwx-segments", "--build-id=none",
}

// Names lists the guests Build knows, sorted.
func Names() []string {
	names := make([]string, 0, len(recipes()))
	for n := range recipes() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Build compiles the named guest from the embedded sources with gcc and ld
// into a per-user cache directory and returns the ELF's path. A cached
// build of identical sources and flags is reused. It fails with an error
// naming gcc or ld when the toolchain is missing. Without HOME the cache
// is a directory of this user's own under os.TempDir(); one of that name
// that another user made or may write is refused, naming it: its builds
// could be anybody's.
func Build(name string) (string, error) {
	dir, err := usercache.Dir()
	if err != nil {
		return "", fmt.Errorf("guests: %w", err)
	}
	return BuildIn(filepath.Join(dir, "smolvmm-guests"), name)
}

// BuildIn is Build with an explicit cache directory.
func BuildIn(cacheDir, name string) (string, error) {
	r, ok := recipes()[name]
	if !ok {
		return "", fmt.Errorf("guests: unknown guest %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	tools := []string{"gcc", "ld"}
	if len(r.blob32) > 0 {
		tools = append(tools, "objcopy")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("guests: building %s needs %s (install gcc and binutils): %w", name, tool, err)
		}
	}
	cflags, script := r.flags()
	key, err := r.key(name, cflags, script)
	if err != nil {
		return "", err
	}
	out := filepath.Join(cacheDir, key, name+".elf")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("guests: cache directory: %w", err)
	}
	work, err := os.MkdirTemp(filepath.Dir(out), "build-")
	if err != nil {
		return "", fmt.Errorf("guests: cache directory: %w", err)
	}
	defer os.RemoveAll(work)
	if err := extractSources(work); err != nil {
		return "", err
	}
	if len(r.blob32) > 0 {
		if err := buildBlob32(work, name, r.blob32); err != nil {
			return "", err
		}
	}
	objs, err := compile(work, name, "", cflags, r.srcs)
	if err != nil {
		return "", err
	}
	lflags := ldFlags
	if r.elf64 {
		lflags = ldFlags64
	}
	args := append(append([]string{}, lflags...), "-T", script, "-o", name+".elf")
	if err := run(work, "ld", append(args, objs...)...); err != nil {
		return "", fmt.Errorf("guests: linking %s: %w", name, err)
	}
	// Rename makes the finished file appear atomically for concurrent builders.
	if err := os.Rename(filepath.Join(work, name+".elf"), out); err != nil {
		return "", fmt.Errorf("guests: storing %s: %w", out, err)
	}
	return out, nil
}

// compile builds srcs in dir with cflags and returns the object names,
// each prefixed with prefix.
func compile(dir, name, prefix string, cflags, srcs []string) ([]string, error) {
	var objs []string
	for _, src := range srcs {
		obj := prefix + src + ".o" // intr.S and intr.c must not collide
		args := append(append([]string{}, cflags...), "-c", src, "-o", obj)
		if err := run(dir, "gcc", args...); err != nil {
			return nil, fmt.Errorf("guests: compiling %s for %s: %w", src, name, err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// buildBlob32 links srcs, built for i386, at their physical address with
// blob32.ld and writes the flat image blob32.bin in dir.
func buildBlob32(dir, name string, srcs []string) error {
	objs, err := compile(dir, name, "blob32-", append(append([]string{}, baseCFlags...), "-fno-pic"), srcs)
	if err != nil {
		return err
	}
	args := append(append([]string{}, ldFlags...), "-T", "blob32.ld", "-o", "blob32.elf")
	if err := run(dir, "ld", append(args, objs...)...); err != nil {
		return fmt.Errorf("guests: linking the 32-bit blob of %s: %w", name, err)
	}
	if err := run(dir, "objcopy", "-O", "binary", "-j", ".blob", "blob32.elf", "blob32.bin"); err != nil {
		return fmt.Errorf("guests: flattening the 32-bit blob of %s: %w", name, err)
	}
	return nil
}

func (r recipe) flags() (cflags []string, script string) {
	if r.elf64 {
		return append([]string{}, cFlags64...), "link64.ld"
	}
	cflags = append([]string{}, baseCFlags...)
	script = "link.ld"
	if r.virt {
		cflags, script = append(cflags, "-fPIE", "-fvisibility=hidden"), "link-virt.ld"
	} else {
		cflags = append(cflags, "-fno-pic")
	}
	if r.script != "" {
		script = r.script
	}
	return cflags, script
}

// key hashes everything that decides the output: the recipe, the flags and
// every source file.
func (r recipe) key(name string, cflags []string, script string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%q\x00%q\x00%s\x00", name, cflags, ldFlags, script)
	if r.elf64 || len(r.blob32) > 0 {
		fmt.Fprintf(h, "%q\x00%q\x00%q\x00", ldFlags64, r.blob32, baseCFlags)
	}
	err := fs.WalkDir(sources, "src", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := sources.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("guests: hashing sources: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func extractSources(dir string) error {
	ents, err := sources.ReadDir("src")
	if err != nil {
		return fmt.Errorf("guests: reading embedded sources: %w", err)
	}
	for _, e := range ents {
		b, err := sources.ReadFile("src/" + e.Name())
		if err != nil {
			return fmt.Errorf("guests: reading embedded %s: %w", e.Name(), err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return fmt.Errorf("guests: writing %s: %w", e.Name(), err)
		}
	}
	return nil
}

func run(dir, tool string, args ...string) error {
	cmd := exec.Command(tool, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("%s failed: %w\n%s", tool, err, strings.TrimSpace(out.String()))
		}
		return fmt.Errorf("running %s: %w", tool, err)
	}
	return nil
}

// Toolchain returns the first version line of gcc and of ld, the tools
// whose output ends up in a built guest.
func Toolchain() (string, error) {
	var lines []string
	for _, tool := range []string{"gcc", "ld"} {
		out, err := exec.Command(tool, "--version").Output()
		if err != nil {
			return "", fmt.Errorf("guests: %s --version: %w", tool, err)
		}
		lines = append(lines, strings.SplitN(string(out), "\n", 2)[0])
	}
	return strings.Join(lines, "\n") + "\n", nil
}

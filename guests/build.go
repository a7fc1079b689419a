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
)

//go:embed src
var sources embed.FS

// recipe says which sources make a guest and how it is linked.
type recipe struct {
	srcs []string
	// virt links at virtual 0xc0100000 (physical 0x100000) like NetBSD, with
	// position-independent code so it runs before any paging.
	virt bool
}

var runtimeSrcs = []string{"entry.S", "rt.c"}
var intrSrcs = []string{"intr.S", "intr.c"}

func withRuntime(extra ...string) []string {
	return append(append([]string{}, runtimeSrcs...), extra...)
}

var recipes = map[string]recipe{
	"demo":      {srcs: withRuntime("demo.c")},
	"demo-virt": {srcs: withRuntime("demo.c"), virt: true},
	"irq":       {srcs: withRuntime(append(intrSrcs, "irq.c")...)},
	"vblk":      {srcs: withRuntime(append(intrSrcs, "virtio.c", "vblk.c", "vblk_evil.c")...)},
	"vnet":      {srcs: withRuntime(append(intrSrcs, "virtio.c", "vnet.c")...)},
	"bad":       {srcs: withRuntime("bad.c")},
	"hammer":    {srcs: withRuntime("hammer.c")},
	"up":        {srcs: withRuntime("virtio.c", "up.c")},
	"paging":    {srcs: withRuntime("paging.c", "iret.S"), virt: true},
}

var baseCFlags = []string{
	"-m32", "-march=i686", "-mgeneral-regs-only", "-ffreestanding", "-nostdlib",
	"-fno-stack-protector", "-fno-asynchronous-unwind-tables",
	"-fno-tree-loop-distribute-patterns", "-O2", "-Wall", "-Wextra", "-Werror",
}

var ldFlags = []string{
	"-m", "elf_i386", "-z", "max-page-size=0x1000", "-z", "noexecstack",
	"--no-warn-rwx-segments", "--build-id=none",
}

// Names lists the guests Build knows, sorted.
func Names() []string {
	names := make([]string, 0, len(recipes))
	for n := range recipes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Build compiles the named guest from the embedded sources with gcc and ld
// into a per-user cache directory and returns the ELF's path. A cached
// build of identical sources and flags is reused. It fails with an error
// naming gcc or ld when the toolchain is missing.
func Build(name string) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return BuildIn(filepath.Join(dir, "smolvmm-guests"), name)
}

// BuildIn is Build with an explicit cache directory.
func BuildIn(cacheDir, name string) (string, error) {
	r, ok := recipes[name]
	if !ok {
		return "", fmt.Errorf("guests: unknown guest %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	for _, tool := range []string{"gcc", "ld"} {
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
	var objs []string
	for _, src := range r.srcs {
		obj := src + ".o" // intr.S and intr.c must not collide
		args := append(append([]string{}, cflags...), "-c", src, "-o", obj)
		if err := run(work, "gcc", args...); err != nil {
			return "", fmt.Errorf("guests: compiling %s for %s: %w", src, name, err)
		}
		objs = append(objs, obj)
	}
	args := append(append([]string{}, ldFlags...), "-T", script, "-o", name+".elf")
	if err := run(work, "ld", append(args, objs...)...); err != nil {
		return "", fmt.Errorf("guests: linking %s: %w", name, err)
	}
	// Rename makes the finished file appear atomically for concurrent builders.
	if err := os.Rename(filepath.Join(work, name+".elf"), out); err != nil {
		return "", fmt.Errorf("guests: storing %s: %w", out, err)
	}
	return out, nil
}

func (r recipe) flags() (cflags []string, script string) {
	cflags = append([]string{}, baseCFlags...)
	if r.virt {
		return append(cflags, "-fPIE", "-fvisibility=hidden"), "link-virt.ld"
	}
	return append(cflags, "-fno-pic"), "link.ld"
}

// key hashes everything that decides the output: the recipe, the flags and
// every source file.
func (r recipe) key(name string, cflags []string, script string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%q\x00%q\x00%s\x00", name, cflags, ldFlags, script)
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

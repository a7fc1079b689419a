package nestedkvm

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/ulikunitz/xz"

	"github.com/smolvmm/smolvmm/internal/usercache"
)

// ErrUnavailable marks an ingredient this machine cannot provide (no
// apt-get, no package index, no network, no QEMU): tests skip on it rather
// than fail.
var ErrUnavailable = errors.New("rig ingredient unavailable")

// unavailableError is an error that matches ErrUnavailable without
// carrying its text.
type unavailableError struct{ msg string }

func (e *unavailableError) Error() string        { return e.msg }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

func unavailablef(format string, args ...any) error {
	return &unavailableError{msg: fmt.Sprintf(format, args...)}
}

// CacheDir is where the rig keeps the unpacked Debian packages:
// $XDG_CACHE_HOME/smolvmm-test/nestedkvm, else ~/.cache/smolvmm-test/nestedkvm,
// else, with no HOME, the same below a directory of this user's own in the
// temporary directory, or one of this process's where that is refused
// (usercache.Root), never one another user could have filled (the Debian
// packages of vmm's tests are next to it, in ../debian).
func CacheDir() string {
	cache, _ := usercache.Root()
	return filepath.Join(cache, "smolvmm-test", "nestedkvm")
}

// debPackage is one Debian package unpacked (in part) in the cache.
type debPackage struct {
	Name, Version string
	Root          string // the unpacked files, as paths of the package's tree
	// Fallback says why this cached package stands in for the one asked
	// for, if it does.
	Fallback string
}

// aptShow returns the fields of the candidate versions of pkgs, by package
// name, as one `apt-cache show --no-all-versions` prints them.
func aptShow(pkgs ...string) (map[string]map[string]string, error) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		return nil, unavailablef("apt-cache not found (not a Debian system?)")
	}
	out, err := exec.Command("apt-cache", append([]string{"show", "--no-all-versions"}, pkgs...)...).Output()
	if err != nil {
		return nil, unavailablef("apt-cache show %s found no candidate (run apt-get update?): %v", strings.Join(pkgs, " "), err)
	}
	all := map[string]map[string]string{}
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(append(out, '\n')))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" { // the end of a stanza
			if fields["Package"] != "" && all[fields["Package"]] == nil {
				all[fields["Package"]] = fields
			}
			fields = map[string]string{}
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
			fields[k] = strings.TrimSpace(v)
		}
	}
	for _, p := range pkgs {
		if all[p]["Version"] == "" {
			return nil, unavailablef("apt-cache show %s: no candidate version (run apt-get update?)", p)
		}
	}
	return all, nil
}

// kernelDepends finds in linux-image-amd64's fields the versioned kernel
// package it depends on (linux-image-6.1.0-NN-amd64) and, when the
// dependency is exact, its version.
func kernelDepends(fields map[string]string) (name, version string, err error) {
	for _, dep := range strings.Split(fields["Depends"], ",") {
		name, rest, _ := strings.Cut(strings.TrimSpace(dep), " ")
		if strings.HasPrefix(name, "linux-image-") {
			rest = strings.TrimSpace(rest)
			if v, ok := strings.CutPrefix(rest, "(="); ok && strings.HasSuffix(v, ")") {
				version = strings.TrimSpace(strings.TrimSuffix(v, ")"))
			}
			return name, version, nil
		}
	}
	return "", "", fmt.Errorf("linux-image-amd64 depends on no linux-image-* package (Depends: %q)", fields["Depends"])
}

// fetchPackage returns pkg's version unpacked in the cache, keyed by name
// and version so that an update of the package index brings in the new
// version and a cached one is reused without network. Only the files keep
// selects are unpacked; keep returns the path to store a file under
// (module.ko.xz is stored decompressed as module.ko, say), or "".
// lookupErr is the error that left version unknown, if any. family is the
// name prefix of the packages that may stand in for pkg when it cannot be
// had ("linux-image-": a new kernel ABI is a new package name, which no
// cached package has); after a download, all but the newest two of the
// family are removed from the cache, so that it does not grow with each
// kernel update.
func fetchPackage(cacheDir, pkg, version, family string, lookupErr error, keep func(name string) string) (debPackage, error) {
	err := lookupErr
	if err == nil {
		var p debPackage
		if p, err = downloadPackage(cacheDir, pkg, version, keep); err == nil {
			pruneCached(cacheDir, family, 2, filepath.Dir(p.Root))
			return p, nil
		}
	}
	if errors.Is(err, ErrUnavailable) {
		// No apt, or no network for a new version: a cached one will do.
		if cached, ok := newestCached(cacheDir, family); ok {
			want := family + "*"
			if pkg != "" {
				want = strings.TrimSpace(pkg + " " + version)
			}
			cached.Fallback = fmt.Sprintf("%s unavailable (%v); using the cached %s %s", want, firstLine(err), cached.Name, cached.Version)
			return cached, nil
		}
	}
	return debPackage{}, err
}

// firstLine is err's text up to its first newline (apt-get's output
// follows it).
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// downloadPackage is fetchPackage without the fallback to the cache.
func downloadPackage(cacheDir, pkg, version string, keep func(name string) string) (debPackage, error) {
	dir := filepath.Join(cacheDir, pkg+"_"+strings.ReplaceAll(version, ":", "%3a"))
	p := debPackage{Name: pkg, Version: version, Root: filepath.Join(dir, "root")}
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return p, nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return debPackage{}, unavailablef("apt-get not found to download %s", pkg)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return debPackage{}, fmt.Errorf("package cache: %w", err)
	}
	// Unpack beside the final directory and rename it into place, so that a
	// test process running at the same time never sees half a package.
	tmp, err := os.MkdirTemp(cacheDir, ".tmp-"+pkg+"-")
	if err != nil {
		return debPackage{}, fmt.Errorf("package cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("apt-get", "download", "-q", pkg+"="+version)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return debPackage{}, unavailablef("apt-get download %s=%s (no network?): %v\n%s", pkg, version, err, bytes.TrimSpace(out))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return debPackage{}, fmt.Errorf("apt-get download %s left %d .deb files, want 1", pkg, len(debs))
	}
	if err := unpackDeb(debs[0], filepath.Join(tmp, "root"), keep); err != nil {
		return debPackage{}, fmt.Errorf("%s: %w", filepath.Base(debs[0]), err)
	}
	if err := os.Remove(debs[0]); err != nil {
		return debPackage{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), []byte(pkg+" "+version+"\n"), 0o644); err != nil {
		return debPackage{}, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "complete")); statErr == nil {
			return p, nil // another process got there first
		}
		return debPackage{}, fmt.Errorf("package cache: %w", err)
	}
	return p, nil
}

// cachedPackages returns the directories of the complete cached packages
// whose name starts with prefix, oldest first.
func cachedPackages(cacheDir, prefix string) []string {
	files, _ := filepath.Glob(filepath.Join(cacheDir, prefix+"*", "complete"))
	dirs := make([]string, len(files))
	for i, f := range files {
		dirs[i] = filepath.Dir(f)
	}
	sort.Slice(dirs, func(i, j int) bool { return versionLess(filepath.Base(dirs[i]), filepath.Base(dirs[j])) })
	return dirs
}

// newestCached finds the highest cached version of the packages whose
// name starts with prefix (by Debian's version order only roughly: runs of
// digits compare as numbers, the rest as text, which suits the rig's
// fallback).
func newestCached(cacheDir, prefix string) (debPackage, bool) {
	dirs := cachedPackages(cacheDir, prefix)
	if len(dirs) == 0 {
		return debPackage{}, false
	}
	dir := dirs[len(dirs)-1]
	name, v, _ := strings.Cut(filepath.Base(dir), "_")
	return debPackage{Name: name, Version: strings.ReplaceAll(v, "%3a", ":"), Root: filepath.Join(dir, "root")}, true
}

// pruneCached removes the complete cached packages whose name starts with
// prefix, but for the newest keep and the directories in spare. Each is
// renamed away first, so that no process finds it half removed.
func pruneCached(cacheDir, prefix string, keep int, spare ...string) {
	dirs := cachedPackages(cacheDir, prefix)
	if len(dirs) <= keep {
		return
	}
	for _, dir := range dirs[:len(dirs)-keep] {
		if slices.Contains(spare, dir) {
			continue
		}
		tmp, err := os.MkdirTemp(cacheDir, ".old-")
		if err != nil {
			return
		}
		_ = os.Rename(dir, filepath.Join(tmp, "pkg")) // fails if another process pruned it
		_ = os.RemoveAll(tmp)
	}
}

// versionLess orders a before b with runs of digits compared as numbers
// (6.1.0-9 before 6.1.0-10) and the rest byte by byte.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ra, rb := leadingRun(a), leadingRun(b)
		if isDigit(ra[0]) && isDigit(rb[0]) {
			na, nb := strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
		} else if ra != rb {
			return ra < rb
		}
		a, b = a[len(ra):], b[len(rb):]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// leadingRun is s's first run of digits, or of other bytes.
func leadingRun(s string) string {
	i := 1
	for i < len(s) && isDigit(s[i]) == isDigit(s[0]) {
		i++
	}
	return s[:i]
}

// unpackDeb extracts the selected members of deb's data archive under dst.
// dpkg-deb reads the .deb (whatever its compression); the tar stream is
// read here so that only the few files the rig needs reach the disk (the
// kernel package holds some 400 MiB of modules).
func unpackDeb(deb, dst string, keep func(name string) string) error {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dpkg-deb: %w", err)
	}
	tr := tar.NewReader(out)
	var extractErr error
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			extractErr = fmt.Errorf("data archive: %w", err)
			break
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		to := keep(name)
		if to == "" {
			continue
		}
		if extractErr = extractMember(tr, name, filepath.Join(dst, filepath.FromSlash(to)), os.FileMode(h.Mode).Perm()); extractErr != nil {
			break
		}
	}
	_, _ = io.Copy(io.Discard, out) // let dpkg-deb finish writing
	if err := cmd.Wait(); err != nil && extractErr == nil {
		extractErr = fmt.Errorf("dpkg-deb --fsys-tarfile: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return extractErr
}

// extractMember writes one member to file, decompressing .xz and .gz
// members whose stored name drops that suffix.
func extractMember(r io.Reader, name, file string, perm os.FileMode) error {
	var err error
	switch {
	case strings.HasSuffix(name, ".xz") && !strings.HasSuffix(file, ".xz"):
		r, err = xz.NewReader(r)
	case strings.HasSuffix(name, ".gz") && !strings.HasSuffix(file, ".gz"):
		r, err = gzip.NewReader(r)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.Close()
}

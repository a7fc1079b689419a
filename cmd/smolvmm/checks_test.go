package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/kstrip"
)

// TestCLIChecks runs the binary on command-line mistakes and on outputs it
// must not replace: each is refused at once with its exit status (2 for a
// mistake on the command line), before any download, strip, build or VM.
// The mirror is unreachable and the cache empty, so a check that came after
// the download would fail with a network error instead.
func TestCLIChecks(t *testing.T) {
	bin := smolvmmBin(t)
	dir := t.TempDir()
	cache := t.TempDir()
	text := filepath.Join(dir, "text")
	img := filepath.Join(dir, "a.img")
	for _, p := range []string{text, img} {
		if err := os.WriteFile(p, []byte("not a kernel"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Kernels whose names leave no room on the guest's command line, or
	// too little for the default -a.
	nameFull, nameLong := filepath.Join(dir, strings.Repeat("k", 254)), filepath.Join(dir, strings.Repeat("k", 240))
	for _, p := range []string{nameFull, nameLong} {
		if err := os.WriteFile(p, []byte("not a kernel"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Files their owner made read-only (chmod a-w): the atomic writer
	// needs only the directory writable, and replaced them.
	roKernel, roOut, roImage, roJSON := filepath.Join(dir, "ro-kernel"), filepath.Join(dir, "ro-out"), filepath.Join(dir, "ro.img"), filepath.Join(dir, "ro.json")
	for _, p := range []string{roKernel, roOut, roImage, roJSON} {
		if err := os.WriteFile(p, []byte("keep me"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	symlink, hardlink := filepath.Join(dir, "sym.img"), filepath.Join(dir, "hard.img")
	if err := os.Symlink("a.img", symlink); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(img, hardlink); err != nil {
		t.Fatal(err)
	}
	f := specialFiles(t)
	noMirror := []string{"--cache", cache, "--mirror", "http://127.0.0.1:1/pub"}
	up := func(args ...string) []string { return append(append([]string{"up"}, noMirror...), args...) }
	long := strings.Repeat("a", 300)
	// n -d flags naming images that do not exist: too many are refused
	// before any is opened (which would say "no such file").
	disks := func(n int) []string {
		var args []string
		for i := range n {
			args = append(args, "-d", filepath.Join(dir, fmt.Sprintf("none%d.img", i)))
		}
		return args
	}
	tests := []struct {
		name   string
		args   []string
		status int
		stderr string
		keep   string // a special file that must still be what it was
	}{
		{"mkimg bad size", []string{"mkimg", "-m", "abc"}, 2, `-m "abc": want a size in MiB`, ""},
		{"mkimg unknown fs", []string{"mkimg", "--data", dir, "--fs", "ntfs", "-i", filepath.Join(dir, "d.img")}, 2, `--fs "ntfs": want fat32 or iso9660`, ""},
		{"mkimg -f on a FIFO", []string{"mkimg", "-f", "-i", f["fifo"]}, 1, "is a FIFO, not a regular file", "fifo"},
		{"mkimg -f on a socket", []string{"mkimg", "-f", "-i", f["socket"]}, 1, "is a socket, not a regular file", "socket"},
		{"mkimg -f on a character device", []string{"mkimg", "-f", "-i", f["chr"]}, 1, "is a character device, not a regular file", "chr"},
		{"mkimg -f through a symlink to a FIFO", []string{"mkimg", "-f", "-i", f["link-to-fifo"]}, 1, "is a FIFO", "link-to-fifo"},
		{"mkimg --data -f on a FIFO", []string{"mkimg", "--data", dir, "-f", "-i", f["fifo"]}, 1, "is a FIFO", "fifo"},
		{"mkimg on a directory", []string{"mkimg", "-f", "-i", f["dir"]}, 1, "is a directory", "dir"},
		{"fetch ftp mirror", []string{"fetch", "--cache", cache, "--mirror", "ftp://x/"}, 2, `mirror "ftp://x/" is not an http:// or https:// URL`, ""},
		{"fetch version escapes", []string{"fetch", "--cache", cache, "--version", "../../etc"}, 2, `bad version "../../etc"`, ""},
		{"fetch bad set name", []string{"fetch", "--cache", cache, "../rescue"}, 2, `bad set "../rescue"`, ""},
		{"run over-long append", []string{"run", "-k", text, "-a", long}, 2, "-a: 300 bytes", ""},
		{"up over-long append", up("-a", long, "rescue"), 2, "-a: 300 bytes", ""},
		// The exact sum with the kernel's name (text: 4 bytes): 249 bytes
		// passed the check for a one-character name, then the loader
		// refused it with status 1.
		{"run append too long with the kernel's name", []string{"run", "-k", text, "-a", long[:250]}, 2, `-a: 250 bytes, but after the kernel's name "text" and a space the command line holds at most 249 (NetBSD copies 255 bytes with the NUL)`, ""},
		// A long -k file name was blamed on -a, the default one too, with
		// a negative room ("holds at most -47"), before a missing kernel
		// was said to be missing.
		{"run kernel name fills the command line", []string{"run", "-k", nameFull, "--net", "none"}, 2, "smolvmm run: -k " + nameFull + ": the kernel's file name is 254 bytes, and the guest's command line (the kernel's name, a space and -a) holds 254 bytes: the name leaves no room for -a (NetBSD copies 255 bytes with the NUL); give the kernel a shorter file name, or a symlink with one", ""},
		{"run kernel name fills the command line, -a given", []string{"run", "-k", nameFull, "--net", "none", "-a", "x"}, 2, "the kernel's file name is 254 bytes", ""},
		{"run kernel name leaves too little for the default -a", []string{"run", "-k", nameLong, "--net", "none"}, 2, "smolvmm run: -k " + nameLong + `: the kernel's file name is 240 bytes, which leaves 13 of the guest's command line for -a, and the default -a "console=com root=ld0a" is 21 (NetBSD copies 255 bytes with the NUL); give the kernel a shorter file name, or a symlink with one (or a shorter -a)`, ""},
		{"bench kernel name fills the command line", []string{"bench", "-k", nameFull, "-n", "1", "--warmup", "0"}, 2, "smolvmm bench: -k " + nameFull + ": the kernel's file name is 254 bytes", ""},
		{"run missing kernel with a long name", []string{"run", "-k", nameLong + "-missing", "--net", "none"}, 1, "no such file or directory (check the path given with -k)", ""},
		{"run kernel name past the file name limit", []string{"run", "-k", filepath.Join(dir, long), "--net", "none"}, 1, "file name too long (check the path given with -k)", ""},
		// One disk past the PCI slots failed, status 1, once all the
		// others were open: "ld31 (disk image ...): pci: bus 0 is full".
		{"run too many disks", append([]string{"run", "-k", text, "--net", "none"}, disks(32)...), 2,
			"smolvmm run: too many disks: 32 -d, and at most 31 fit: the machine's PCI bus has 32 slots, one for the host bridge, and one for each disk; give fewer -d", ""},
		{"run too many disks with a network card", append([]string{"run", "-k", text}, disks(31)...), 2,
			"smolvmm run: too many disks: 31 -d, and at most 30 fit: the machine's PCI bus has 32 slots, one for the host bridge, one for the network card (--net none has none), and one for each disk; give fewer -d", ""},
		{"run as many disks as fit", append([]string{"run", "-k", text, "--net", "none"}, disks(31)...), 1, "none0.img: no such file", ""},
		{"demo too many disks with --share", append([]string{"demo", "--share", dir}, disks(31)...), 2,
			"smolvmm demo: too many disks: 31 -d and 1 --share, and at most 31 fit: the machine's PCI bus has 32 slots, one for the host bridge, and one for each disk; give fewer -d or --share", ""},
		{"up too many disks", up(append(disks(30), "rescue")...), 2,
			"smolvmm up: too many disks: 30 -d, and at most 29 fit: the machine's PCI bus has 32 slots, one for the host bridge, one for the image up boots as ld0, one for the network card (--net none has none), and one for each disk; give fewer -d", ""},
		{"bench too many disks", append([]string{"bench", "-k", text, "--net", "none", "-n", "1", "--warmup", "0"}, disks(32)...), 2,
			"smolvmm bench: too many disks: 32 -d, and at most 31 fit", ""},
		// A missing -k file was said (status 1) before every later
		// command-line mistake, which -a "" left at status 2: only the
		// name's own refusal waits for the file.
		{"run missing kernel, negative --uid", []string{"run", "-k", filepath.Join(dir, "nonexist"), "--uid", "-1", "--gid", "5"}, 2, "--uid -1: ids are not negative", ""},
		{"run missing kernel, a disk given twice", []string{"run", "-k", filepath.Join(dir, "nonexist"), "-d", img, "-d", img}, 2, "this image is already a disk of this VM", ""},
		{"run missing kernel, bad -p", []string{"run", "-k", filepath.Join(dir, "nonexist"), "-p", "bogus"}, 2, `-p: malformed port forward "bogus"`, ""},
		{"run missing kernel, too long -a", []string{"run", "-k", filepath.Join(dir, "nonexist"), "-a", long}, 2, "-a: 300 bytes", ""},
		// NetBSD's native handoff has no command line: the kernel's name
		// goes into BTINFO_BOOTPATH (cut, with a warning) and -a's words
		// into bootinfo, so neither the name nor -a's length is refused
		// under --boot netbsd (the VM is then refused for want of KVM).
		{"run --boot netbsd, kernel name fills the command line", []string{"run", "-k", nameFull, "--boot", "netbsd", "--net", "none", "--kvm-device", filepath.Join(dir, "nokvm")}, 1, "no KVM", ""},
		{"run --boot netbsd, kernel name leaves too little for the default -a", []string{"run", "-k", nameLong, "--boot", "netbsd", "--net", "none", "--kvm-device", filepath.Join(dir, "nokvm")}, 1, "no KVM", ""},
		{"run --boot netbsd, long -a", []string{"run", "-k", text, "--boot", "netbsd", "-a", long, "--net", "none", "--kvm-device", filepath.Join(dir, "nokvm")}, 1, "no KVM", ""},
		{"bench --boot netbsd, kernel name fills the command line", []string{"bench", "-k", nameFull, "--boot", "netbsd", "-n", "1", "--warmup", "0", "--ready-port", "0"}, 2, "--ready-port 0", ""},
		{"run kernel name fills the command line: the native way out", []string{"run", "-k", nameFull, "--net", "none"}, 2, "give the kernel a shorter file name, or a symlink with one; for a NetBSD kernel, --boot netbsd has no command line to fill", ""},
		{"run --boot multiboot, kernel name fills the command line", []string{"run", "-k", nameFull, "--boot", "multiboot", "--net", "none"}, 2, "the kernel's file name is 254 bytes", ""},
		{"run append that just fits", []string{"run", "-k", text, "-a", long[:249], "--kvm-device", filepath.Join(dir, "nokvm")}, 1, "no KVM", ""},
		{"demo append too long with the kernel's name", []string{"demo", "-a", long[:250]}, 2, `after the kernel's name "demo" and a space the command line holds at most 249`, ""},
		{"bench append too long with the kernel's name", []string{"bench", "-k", text, "-a", long[:250], "-n", "1", "--warmup", "0"}, 2, `smolvmm bench: -a: 250 bytes, but after the kernel's name "text" and a space`, ""},
		{"up append too long with the kernel's name", up("-a", long[:220], "rescue"), 2, fmt.Sprintf(`-a: 220 bytes, but after the kernel's name "netbsd-GENERIC.kstrip-r%d-DIGEST" and a space the command line holds at most 215`, kstrip.Revision), ""},
		{"bench over-long append", []string{"bench", "-k", text, "-a", long, "-n", "1", "--warmup", "0"}, 2, "smolvmm bench: -a: 300 bytes", ""},
		{"bench same disk twice", []string{"bench", "-k", text, "-d", img, "-d", hardlink, "-n", "1", "--warmup", "0"}, 2, "smolvmm bench: -d " + hardlink + ": this image is already a disk of this VM: it is the same file as -d " + img, ""},
		{"bench same path twice", []string{"bench", "-k", text, "-d", img, "-d", img + ",ro", "-n", "1", "--warmup", "0"}, 2, "smolvmm bench: -d " + img + ": this image is already a disk of this VM (-d " + img + ")", ""},
		// Over-long values are command-line mistakes, refused before any
		// directory is made: they said "mkdir ...: file name too long" or
		// "image lstat NAME: file name too long", status 1.
		{"fetch over-long version", []string{"fetch", "--cache", filepath.Join(dir, "nocache"), "--version", strings.Repeat("9", 300)}, 2, `bad version "9999999999999999"... (300 bytes): want a plain name of at most 64 bytes`, ""},
		{"fetch over-long arch", []string{"fetch", "--cache", filepath.Join(dir, "nocache"), "--arch", long}, 2, `bad arch "aaaaaaaaaaaaaaaa"... (300 bytes)`, ""},
		{"up over-long version", up("--version", strings.Repeat("9", 300), "rescue"), 2, `bad version "9999999999999999"... (300 bytes)`, ""},
		{"mkimg over-long image name", []string{"mkimg", "-i", long}, 2, "smolvmm mkimg: image " + long[:40] + "..." + long[:16] + ": the name " + long[:40] + "..." + long[:16] + " is 300 bytes; a file name has at most 255", ""},
		{"mkimg over-long image path", []string{"mkimg", "-i", strings.Repeat("d/", 2100) + "x.img"}, 2, ": the path is 4205 bytes; Linux takes at most 4095", ""},
		{"up over-long image name", up("-i", filepath.Join(dir, long), "rescue"), 2, "is 300 bytes; a file name has at most 255", ""},
		// Positional values no file can have: status 1 before.
		{"up empty service", up(""), 2, `smolvmm up: service name "": want a plain directory name such as rescue or base`, ""},
		{"up service outside", up("../x"), 2, `smolvmm up: service name "../x": want a plain directory name`, ""},
		{"up over-long service", up(long), 2, `smolvmm up: service name "aaaaaaaaaaaaaaaa"... is 300 bytes: want a plain directory name of at most 255 bytes`, ""},
		{"mkimg service with a slash", []string{"mkimg", "-s", "a/b", "-i", filepath.Join(dir, "s.img")}, 2, `smolvmm mkimg: -s: service name "a/b": want a plain directory name`, ""},
		{"kstrip empty kernel", []string{"kstrip", ""}, 2, "smolvmm kstrip: KERNEL is empty: give the kernel's path after the flags", ""},
		// Said once, with the flag: `--arch: arch "sparc"`, `--restore:
		// open X: ...` without advice, `mkdir X: not a directory`.
		{"mkimg unknown arch", []string{"mkimg", "--arch", "sparc", "-i", filepath.Join(dir, "s.img")}, 2, `smolvmm mkimg: --arch "sparc": images can be built for i386 and amd64 only`, ""},
		{"up unknown arch", up("--arch", "sparc", "rescue"), 2, `smolvmm up: --arch "sparc": images can be built for i386 and amd64 only`, ""},
		{"bench missing snapshot", []string{"bench", "--restore", filepath.Join(dir, "nosnap")}, 1, "smolvmm bench: --restore " + filepath.Join(dir, "nosnap") + ": no such file or directory (check the path given with --restore)", ""},
		{"run missing snapshot", []string{"run", "--restore", filepath.Join(dir, "nosnap")}, 1, "smolvmm run: --restore " + filepath.Join(dir, "nosnap") + ": no such file or directory (check the path given with --restore)", ""},
		{"fetch cache a file", []string{"fetch", "--cache", text, "--mirror", "http://127.0.0.1:1/pub"}, 1, "smolvmm fetch: --cache " + text + " is a regular file, not a directory: give a directory to keep downloads in", ""},
		{"fetch cache under a file", []string{"fetch", "--cache", filepath.Join(text, "c"), "--mirror", "http://127.0.0.1:1/pub"}, 1, "smolvmm fetch: --cache " + filepath.Join(text, "c") + ": a directory above it is a file", ""},
		{"up cache a file", []string{"up", "--cache", text, "--mirror", "http://127.0.0.1:1/pub", "rescue"}, 1, "smolvmm up: --cache " + text + " is a regular file, not a directory", ""},
		{"over-long tap name", []string{"run", "-k", text, "--net", "tap:abcdefghijklmnop"}, 2, "at most 15 characters", ""},
		{"demo stray argument", []string{"demo", "extra"}, 2, `unexpected argument "extra"`, ""},
		{"demo ready port", []string{"demo", "--ready-port", "8080"}, 2, "unknown flag --ready-port", ""},
		{"ready port without a NIC", []string{"run", "-k", text, "--net", "none", "--ready-port", "8080"}, 2, "--ready-port 8080: with --net none", ""},
		{"mac without a NIC", []string{"run", "-k", text, "--mac", "52:54:00:12:34:56", "--net", "none"}, 2, "smolvmm run: --mac 52:54:00:12:34:56: with --net none the guest has no network card", ""},
		{"ready port not forwarded", []string{"run", "-k", text, "-p", "8081:80", "--ready-port", "8080"}, 2, "no -p forwards TCP port 8080", ""},
		{"ready port forwarded as UDP", []string{"run", "-k", text, "-p", "udp:8080:80", "--ready-port", "8080"}, 2, "no -p forwards TCP port 8080", ""},
		{"ready port forwarded", []string{"run", "-k", text, "-p", "8080:80", "--ready-port", "8080", "--kvm-device", filepath.Join(dir, "nokvm")}, 1, "no KVM", ""},
		{"same disk by symlink", []string{"run", "-k", text, "-d", img, "-d", symlink + ",ro"}, 2, "the same file as -d " + img, ""},
		{"same disk by hard link", []string{"run", "-k", text, "-d", img, "-d", hardlink}, 2, "the same file as -d " + img, ""},
		{"up same disk by hard link", up("-d", img, "-d", hardlink, "rescue"), 2, "the same file as -d " + img, ""},
		{"up missing disk", up("-d", filepath.Join(dir, "missing.img"), "rescue"), 1, "missing.img: no such file", ""},
		{"up image in a missing directory", up("-i", filepath.Join(dir, "nodir", "x.img"), "rescue"), 1, "no directory", ""},
		{"up image on a FIFO", up("-i", f["fifo"], "rescue"), 1, "is a FIFO", "fifo"},
		{"up bad version", up("--version", "../../etc", "rescue"), 2, `bad version "../../etc"`, ""},
		// up boots NetBSD's own kernel, which multiboot cannot boot with
		// modules (its multiboot entry reads none) nor for amd64 (ELF64):
		// refused by the run, after the download, strip and build.
		{"up --boot multiboot --module", up("--boot", "multiboot", "--module", text, "rescue"), 2, "smolvmm up: --boot multiboot --module " + text + ": up boots a NetBSD kernel, whose multiboot entry does not read boot modules; drop --boot, or use --boot netbsd", ""},
		{"up --arch amd64 --boot multiboot", up("--arch", "amd64", "--boot", "multiboot", "rescue"), 2, "smolvmm up: --boot multiboot: NetBSD/amd64's kernel is ELF64, and multiboot v1 loads ELF32 kernels only; drop --boot, or use --boot netbsd", ""},
		{"up --arch amd64 --boot netbsd", up("--arch", "amd64", "--boot", "netbsd", "--kvm-device", filepath.Join(dir, "nokvm"), "rescue"), 1, "KVM is not available", ""},
		// A KVM device up may not use was found by the run, once the
		// release was downloaded, the kernel stripped and the image built.
		{"up without KVM", up("--kvm-device", filepath.Join(dir, "nokvm"), "rescue"), 1, "smolvmm up: open " + filepath.Join(dir, "nokvm") + ": KVM is not available: no such file or directory (no KVM device at this path", ""},
		{"up with a KVM device that is none", up("--kvm-device", text, "rescue"), 1, "smolvmm up: KVM_GET_API_VERSION", ""},
		// They said "data directory FILE is not a directory", without the
		// flag or what to give.
		{"mkimg --data a file", []string{"mkimg", "--data", text, "-i", filepath.Join(dir, "d2.img")}, 1, "smolvmm mkimg: --data " + text + " is a regular file, not a directory: give the directory the disk is to hold", ""},
		{"demo --share a file", []string{"demo", "--share", text}, 1, "smolvmm demo: --share " + text + " is a regular file, not a directory: give a directory to share", ""},
		{"run --share,ro a FIFO", []string{"run", "-k", text, "--share", f["fifo"] + ",ro"}, 1, "--share " + f["fifo"] + " is a FIFO, not a directory: give a directory to share", ""},
		{"up --share a file", up("--share", text, "rescue"), 1, "smolvmm up: --share " + text + " is a regular file, not a directory: give a directory to share", ""},
		// A set is a regular file or a directory: a FIFO blocked mkimg
		// for ever, a device was read as an archive.
		// A -x naming nothing built the service's sets, as if left out.
		{"mkimg -x a comma", []string{"mkimg", "-x", ",", "-i", filepath.Join(dir, "x2.img")}, 2, `smolvmm mkimg: -x "," names no set: give set files or directories, e.g. -x rescue.tgz, or leave out -x to take the service's sets`, ""},
		{"mkimg -x commas, repeated", []string{"mkimg", "-x", ",,", "-x", ",", "-i", filepath.Join(dir, "x2.img")}, 2, `smolvmm mkimg: -x ",,,," names no set`, ""},
		{"mkimg -x a FIFO", []string{"mkimg", "-x", f["fifo"], "-i", filepath.Join(dir, "x1.img")}, 1, "smolvmm mkimg: -x " + f["fifo"] + " is a FIFO: give a set archive (.tgz, .tar.xz, .tar) or a directory", "fifo"},
		{"mkimg -x a character device", []string{"mkimg", "-x", f["chr"], "-i", filepath.Join(dir, "x1.img")}, 1, " is a character device: give a set archive", "chr"},
		{"mkimg -x a socket", []string{"mkimg", "-x", text + "," + f["socket"], "-i", filepath.Join(dir, "x1.img")}, 1, " is a socket: give a set archive", "socket"},
		// A keep list is read as -k is: it blocked for ever on a FIFO,
		// said "read DIR: is a directory" after "line 0", and scanned a
		// device until "bufio.Scanner: token too long".
		{"kstrip in place, write-protected", []string{"kstrip", roKernel}, 1, "smolvmm kstrip: kernel " + roKernel + " is write-protected (mode 0444): kstrip does not replace it; strip into another file with -o OUT, or make it writable first (chmod u+w " + roKernel + ")", ""},
		{"kstrip -o write-protected", []string{"kstrip", "-o", roOut, text}, 1, "smolvmm kstrip: -o " + roOut + " is write-protected (mode 0444): kstrip does not replace it; give -o another file, or make it writable first (chmod u+w " + roOut + ")", ""},
		{"mkimg -f write-protected", []string{"mkimg", "-f", "-i", roImage}, 1, "smolvmm mkimg: image " + roImage + " is write-protected (mode 0444): -f does not replace it; give -i another file, or make it writable first (chmod u+w " + roImage + ")", ""},
		{"bench --json write-protected", []string{"bench", "-k", text, "--json", roJSON, "-n", "1", "--warmup", "0"}, 1, "smolvmm bench: --json " + roJSON + " is write-protected (mode 0444): bench does not replace it; give --json another file, or make it writable first (chmod u+w " + roJSON + ")", ""},
		{"kstrip -K a FIFO", []string{"kstrip", "-K", f["fifo"], "-o", filepath.Join(dir, "k1"), text}, 1, "smolvmm kstrip: -K " + f["fifo"] + " is a FIFO: not a regular file (give a keep list in a regular file, one name a line)", "fifo"},
		{"kstrip -K a directory", []string{"kstrip", "-K", dir, "-o", filepath.Join(dir, "k1"), text}, 1, "smolvmm kstrip: -K " + dir + " is a directory: not a regular file (give a keep list", ""},
		{"kstrip -K a character device", []string{"kstrip", "-K", f["chr"], "-o", filepath.Join(dir, "k1"), text}, 1, "is a character device: not a regular file (give a keep list", "chr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before os.FileInfo
			if tt.keep != "" {
				if f[tt.keep] == "" {
					t.Skip("mknod needs root")
				}
				var err error
				if before, err = os.Lstat(f[tt.keep]); err != nil {
					t.Fatal(err)
				}
			}
			for i, a := range tt.args {
				if a == "" && !strings.Contains(tt.name, "empty") {
					t.Fatalf("argument %d is empty", i)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("still running after 30 s (hangs): %s", stderr.String())
			}
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			}
			msg := strings.TrimSpace(stderr.String())
			if status != tt.status || !strings.Contains(msg, tt.stderr) {
				t.Errorf("status %d stderr %q; want status %d and %q", status, msg, tt.status, tt.stderr)
			}
			for _, step := range []string{"up: fetch", "up: service rescue", "connection refused"} {
				if strings.Contains(msg, step) {
					t.Errorf("work was done before the check: %q", msg)
				}
			}
			if before != nil {
				sameNode(t, f[tt.keep], before)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nocache")); err == nil {
		t.Error("a refused fetch made its --cache directory")
	}
	for _, p := range []string{roKernel, roOut, roImage, roJSON} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "keep me" {
			t.Errorf("write-protected %s: %q, %v; want it kept", p, b, err)
		}
	}
}

// TestUpStopsOnSignal: SIGTERM, or SIGINT even when inherited as ignored
// (a background job), stops up's download at once with status 130, as
// fetch; the partial download is kept to resume.
func TestUpStopsOnSignal(t *testing.T) {
	upNeedKVM(t)
	bin := smolvmmBin(t)
	for _, tc := range []struct {
		name   string
		sig    syscall.Signal
		ignore bool
	}{
		{"SIGTERM", syscall.SIGTERM, false},
		{"SIGINT inherited as ignored", syscall.SIGINT, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked := make(chan struct{}, 1)
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case asked <- struct{}{}:
				default:
				}
				<-release // the download hangs until the test ends
			}))
			defer srv.Close()
			defer close(release)
			work := t.TempDir()
			args := []string{"up", "--cache", t.TempDir(), "--mirror", srv.URL + "/pub", "-i", filepath.Join(work, "r.img"), "rescue"}
			var cmd *exec.Cmd
			if tc.ignore {
				// A shell's background job: SIGINT ignored before exec.
				cmd = exec.Command("sh", "-c", `trap "" INT; exec "$0" "$@"`, bin)
				cmd.Args = append(cmd.Args, args...)
			} else {
				cmd = exec.Command(bin, args...)
			}
			cmd.Dir = work
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-asked:
			case err := <-done:
				t.Fatalf("up ended before downloading: %v\n%s", err, stderr.String())
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("up never asked the mirror\n%s", stderr.String())
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				ee, ok := err.(*exec.ExitError)
				if !ok || ee.ExitCode() != 130 {
					t.Errorf("ended with %v, want exit status 130\n%s", err, stderr.String())
				}
				if !strings.Contains(stderr.String(), "interrupted") {
					t.Errorf("stderr does not say it was interrupted: %q", stderr.String())
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("up carried on after %v\n%s", tc.sig, stderr.String())
			}
			if ents, _ := os.ReadDir(work); len(ents) != 0 {
				t.Errorf("left in the working directory: %v", ents)
			}
		})
	}
}

package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
	"github.com/smolvmm/smolvmm/kstrip"
	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
	"github.com/smolvmm/smolvmm/netbsdboot"
)

// runKstripCLI runs "smolvmm kstrip args..." in process.
func runKstripCLI(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	app := testApp([]*cli.Command{kstripCommand()}, &o, &e)
	if err := app.Run(append([]string{"smolvmm", "kstrip"}, args...)); err != nil {
		e.WriteString(advise(err)) // as main says it
		return o.String(), e.String(), exitCode(err)
	}
	return o.String(), e.String(), 0
}

// testKernel builds a kernel in dir, or skips without gcc.
func testKernel(t *testing.T, o kstriptest.Options) string {
	t.Helper()
	if err := kstriptest.Available(o.Bits); err != nil {
		t.Skipf("cannot build test kernels: %v", err)
	}
	if o.Entries == nil {
		o.Entries, o.Provides = kstriptest.Generic, kstriptest.GenericProvides
	}
	p, err := kstriptest.Build(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// libStrip is what the library makes of path with plan: the CLI must
// write exactly these bytes.
func libStrip(t *testing.T, path string, plan kstrip.Plan) []byte {
	t.Helper()
	k, err := kstrip.Parse(mustRead(t, path))
	if err != nil {
		t.Fatal(err)
	}
	r, err := k.Plan(plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Apply(r); err != nil {
		t.Fatal(err)
	}
	return k.Bytes()
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func gunzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKstripInPlace(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	os.Chmod(kern, 0o751)
	want := libStrip(t, kern, kstrip.Plan{Strip: true, Keep: kstrip.DefaultKeep, IgnoreUnknown: true})
	out, errOut, code := runKstripCLI(kern)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, s := range []string{"kept parent [7] ppb* (ppb) for pci* (pci)\n", "kept parent [9] pcib* (pcib) for isa0 (isa)\n", "disabled 26, enabled 0; 18 of 45 entries enabled; wrote " + kern} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	// ppb* is kept for both pci* entries (at mainbus, at ppb): one line.
	if n := strings.Count(out, "kept parent [7] ppb* (ppb) for pci* (pci)"); n != 1 {
		t.Errorf("ppb* reported %d times:\n%s", n, out)
	}
	if !bytes.Equal(mustRead(t, kern), want) {
		t.Error("the file differs from the library's result")
	}
	if st, _ := os.Stat(kern); st.Mode().Perm() != 0o751 {
		t.Errorf("mode %v, want 0751", st.Mode().Perm())
	}
	// Second run: nothing to do, same bytes.
	out, _, code = runKstripCLI(kern)
	if code != 0 || !strings.Contains(out, "disabled 0, enabled 0") || !strings.Contains(out, "left as it was") || !bytes.Equal(mustRead(t, kern), want) {
		t.Errorf("second run: exit %d, %q", code, out)
	}
	ents, _ := os.ReadDir(filepath.Dir(kern))
	for _, e := range ents {
		if strings.Contains(e.Name(), "kstrip") {
			t.Errorf("left %s behind", e.Name())
		}
	}
}

func TestKstripGzip(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 64})
	want := libStrip(t, kern, kstrip.Plan{Strip: true, Keep: kstrip.DefaultKeep, IgnoreUnknown: true})
	dir := filepath.Dir(kern)
	gzIn := filepath.Join(dir, "netbsd-GENERIC.gz")
	compressed := gzipBytes(mustRead(t, kern))
	os.WriteFile(gzIn, compressed, 0o644)
	tests := []struct {
		out  string
		gzip bool
	}{
		{filepath.Join(dir, "netbsd-small"), false},
		{filepath.Join(dir, "netbsd-small.gz"), true},
	}
	for _, tc := range tests {
		if _, e, code := runKstripCLI("-o", tc.out, gzIn); code != 0 {
			t.Fatalf("-o %s: exit %d %s", tc.out, code, e)
		}
		got := mustRead(t, tc.out)
		if tc.gzip {
			got = gunzipBytes(t, got)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("-o %s: content differs from the library's result", tc.out)
		}
	}
	if !bytes.Equal(mustRead(t, gzIn), compressed) {
		t.Error("-o changed the gzipped input")
	}
	// -o twice gives the same compressed bytes.
	first := mustRead(t, tests[1].out)
	runKstripCLI("-o", tests[1].out, gzIn)
	if !bytes.Equal(first, mustRead(t, tests[1].out)) {
		t.Error("writing the same .gz twice gave different bytes")
	}
}

func TestKstripListAndJSON(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	before := mustRead(t, kern)
	out, _, code := runKstripCLI("--list", kern)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 46 || strings.Join(strings.Fields(lines[20]), " ") != "19 fdc0 0 fdc_isa isa? isa notfound" {
		t.Errorf("--list: exit %d, %d lines, line 20 %q", code, len(lines), lines[min(20, len(lines)-1)])
	}
	out, _, code = runKstripCLI("--json", kern)
	var j kstripJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil || code != 0 {
		t.Fatalf("--json: %v exit %d\n%s", err, code, out)
	}
	if len(j.Entries) != 45 || j.EntrySize != 24 || j.Written || len(j.Changes) != 0 || j.Entries[14].Attach != "com_isa" || j.Entries[14].Parent.Name != "isa" {
		t.Errorf("--json: %+v", j)
	}
	// With an edit and --dry-run: the table after the edit, nothing written.
	out, _, code = runKstripCLI("--json", "--dry-run", "--disable", "fdc,pckbc", kern)
	j = kstripJSON{}
	json.Unmarshal([]byte(out), &j)
	if code != 0 || len(j.Changes) != 2 || j.Entries[19].State != kstrip.DNotFound || j.Written {
		t.Errorf("--json --dry-run --disable: exit %d %+v", code, j.Changes)
	}
	out, _, _ = runKstripCLI("--dry-run", "--disable", "fdc", kern)
	if !strings.Contains(out, "disable [19] fdc0 (fdc_isa): notfound -> dnotfound") || !strings.Contains(out, "dry run, nothing written") {
		t.Errorf("--dry-run output:\n%s", out)
	}
	if !bytes.Equal(before, mustRead(t, kern)) {
		t.Error("--list, --json or --dry-run changed the kernel")
	}
}

func TestKstripKeepLists(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	dir := filepath.Dir(kern)
	keep := filepath.Join(dir, "keep.list")
	os.WriteFile(keep, []byte("# a serial-only VM\nmainbus\n\ncom0   # the console\n"), 0o644)
	tests := []struct {
		name    string
		args    []string
		plan    kstrip.Plan
		stdout  []string
		stderr  []string
		enabled []int
	}{
		{"keep file", []string{"-K", keep}, kstrip.Plan{Strip: true, Keep: []string{"mainbus", "com0"}},
			[]string{"kept parent [11] isa0 (isa) for com0 (com_isa)\nkept parent [12] isa0 (isa) for com0 (com_isa)\n"}, nil, []int{0, 5, 6, 7, 9, 10, 11, 12, 13, 14}},
		{"keep flag keeps a slow probe", []string{"--keep", "mainbus,pckbd"}, kstrip.Plan{Strip: true, Keep: []string{"mainbus", "pckbd"}},
			[]string{"kept parent [21] pckbc0 (pckbc_isa) for pckbd* (pckbd)"}, []string{"warning: pckbc0 (pckbc_isa) stays enabled"}, []int{0, 5, 6, 7, 9, 10, 11, 12, 13, 21, 22}},
		{"disable only", []string{"--disable", "fdc", "--disable", "com*"}, kstrip.Plan{Disable: []string{"fdc", "com*"}},
			[]string{"disabled 3, enabled 0"}, nil, nil},
		{"enable only", []string{"--enable", "ne0"}, kstrip.Plan{Enable: []string{"ne0"}},
			[]string{"disabled 0, enabled 1"}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "k")
			stdout, stderr, code := runKstripCLI(append(append([]string{"-o", out}, tc.args...), kern)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			got := mustRead(t, out)
			if !bytes.Equal(got, libStrip(t, kern, tc.plan)) {
				t.Error("output differs from the library's result")
			}
			if tc.enabled != nil {
				k, _ := kstrip.Parse(got)
				for i, e := range k.Entries {
					want := false
					for _, x := range tc.enabled {
						want = want || x == i
					}
					if e.State.Disabled() == want {
						t.Errorf("cfdata[%d] %s: %v", i, e.Label(), e.State)
					}
				}
			}
		})
	}
}

func TestKstripBadInput(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("not a kernel\n"), 0o644)
	badgz := filepath.Join(dir, "netbsd.gz")
	os.WriteFile(badgz, gzipBytes([]byte("hello"))[:12], 0o644)
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	emptyKeep := filepath.Join(dir, "empty.list")
	os.WriteFile(emptyKeep, []byte("# nothing\n"), 0o644)
	// A kernel its owner made read-only, and an output made so: the
	// rename needs only the directory writable, and replaced them.
	roKern, roOut := filepath.Join(dir, "netbsd-ro"), filepath.Join(dir, "out-ro")
	os.WriteFile(roKern, mustRead(t, kern), 0o444)
	os.WriteFile(roOut, []byte("an older kernel"), 0o444)
	keepList := filepath.Join(dir, "keep.list")
	os.WriteFile(keepList, []byte("mainbus\ncom0\n"), 0o644)
	// A kernel configuration given as the keep list: each of its words
	// was an unknown name, every "at" among them, in a one-line error
	// of hundreds of kilobytes.
	config := filepath.Join(dir, "GENERIC")
	os.WriteFile(config, []byte("# GENERIC\ninclude \"arch/i386/conf/std.i386\"\nmainbus0 at root\ncom0 at isa? port 0x3f8 irq 4\n"), 0o644)
	// Sparse: refused by its size, never read (it was read whole, 1 GiB
	// of memory, to say "not an ELF file").
	huge := filepath.Join(dir, "big.img")
	os.WriteFile(huge, []byte("\x7fELF"), 0o644)
	if err := os.Truncate(huge, 1<<30); err != nil {
		t.Fatal(err)
	}
	// An arm kernel's table has none of the default list's names: the
	// list is filtered to the names a kernel has, which left nothing to
	// keep, and every entry was disabled with status 0.
	arm := testKernel(t, kstriptest.Options{Bits: 32, Entries: []kstriptest.Entry{
		{Name: "armfdt", Attach: "armfdt", State: 0},
		{Name: "plcom", Attach: "plcom_fdt", State: 2, Parent: &kstriptest.Parent{IAttr: "fdt", Name: "armfdt", Unit: -1}},
	}})
	tests := []struct {
		name string
		args []string
		file string
		code int
		msg  []string
	}{
		{"not ELF", []string{text}, text, 1, []string{"not an ELF file", " (give an uncompressed or gzipped NetBSD kernel)"}},
		{"truncated gzip", []string{badgz}, badgz, 1, []string{badgz, "truncated"}},
		{"stripped", []string{testKernel(t, kstriptest.Options{Bits: 32, Stripped: true})}, "", 1, []string{"stripped", "release kernels"}},
		{"no terminator", []string{testKernel(t, kstriptest.Options{Bits: 32, NoTerminator: true})}, "", 1, []string{"no all-zero terminator"}},
		{"no cfdata", []string{testKernel(t, kstriptest.Options{Bits: 32, Symbol: "ioconf"})}, "", 1, []string{"no cfdata symbol"}},
		{"unknown keep name", []string{"--keep", "mainbus,vioff", kern}, kern, 1, []string{`keep name "vioff"`, "did you mean vioif"}},
		{"unknown disable name", []string{"--disable", "fcd", kern}, kern, 1, []string{`disable name "fcd"`, "fdc"}},
		{"empty keep file", []string{"-K", emptyKeep, kern}, kern, 1, []string{"names nothing"}},
		{"empty keep flag", []string{"--keep", " ,", kern}, kern, 2, []string{"names nothing"}}, // a command-line mistake: status 2
		{"write-protected in place", []string{roKern}, roKern, 1, []string{"kernel " + roKern + " is write-protected (mode 0444): kstrip does not replace it; strip into another file with -o OUT, or make it writable first (chmod u+w " + roKern + ")"}},
		{"write-protected -o", []string{"-o", roOut, kern}, roOut, 1, []string{"-o " + roOut + " is write-protected (mode 0444): kstrip does not replace it; give -o another file"}},
		// Documented as alternatives, they were merged into one list.
		{"keep file and keep flag", []string{"-K", keepList, "--keep", "mainbus,pci", kern}, kern, 2, []string{"kstrip: -K " + keepList + " and --keep mainbus,pci: each is the whole keep list; give one of them (put every name in the file, or all on --keep)"}},
		// The example names the narrow attachments the default list
		// uses, not com and ld, which keep puc, pcmcia, aac, nvme...
		{"blank keep flag", []string{"--keep=", kern}, kern, 2, []string{"e.g. --keep mainbus,cpu,pci,isa,com_isa,virtio,ld_virtio"}},
		{"huge file listed", []string{"-l", huge}, "", 1, []string{huge + " is 1024 MiB, more than the 512 MiB allowed", "not a kernel image"}},
		{"huge file stripped", []string{"-n", huge}, "", 1, []string{huge + " is 1024 MiB, more than the 512 MiB allowed", "not a kernel image"}},
		{"ignored keep names keep nothing", []string{"--ignore-unknown", "--keep", "vioff,nosuch", kern}, kern, 1, []string{"vioff, nosuch", "every entry but the root mainbus0"}},
		{"no default name in the kernel", []string{arm}, arm, 1, []string{"no keep or enable name matches an entry", "default keep list", "--keep or -K"}},
		{"no default name, unknown names ignored", []string{"--ignore-unknown", arm}, arm, 1, []string{"no keep or enable name matches an entry"}},
		{"missing keep file", []string{"-K", filepath.Join(dir, "nope"), kern}, kern, 1, []string{"nope"}},
		{"kernel configuration as keep file", []string{"-K", config, kern}, kern, 1, []string{config + `: keep list line 2, "include \"arch/i386/conf/std.i386\"", is written as in a kernel configuration`, "-K wants the names of the drivers to keep, one a line"}},
		{"missing kernel", []string{filepath.Join(dir, "netbsd")}, "", 1, []string{"no such file"}},
		// The kernel, not an output the user never gave, is what is
		// wrong (it said "output DIR is a directory, not a regular file").
		{"directory in place", []string{dir}, "", 1, []string{"kstrip: kernel " + dir + " is a directory: give a kernel file"}},
		{"device in place", []string{"/dev/null"}, "", 1, []string{"kstrip: kernel /dev/null is a character device: give a kernel file"}},
		{"directory listed", []string{"-l", dir}, "", 1, []string{"kstrip: kernel " + dir + " is a directory: give a kernel file"}},
		{"device to -o", []string{"-o", filepath.Join(dir, "out"), "/dev/null"}, "", 1, []string{"kstrip: kernel /dev/null is a character device: give a kernel file"}},
		{"no kernel", nil, "", 2, []string{"give one KERNEL after the flags"}},
		{"two kernels", []string{kern, kern}, kern, 2, []string{"smolvmm kstrip takes one KERNEL, after the flags"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before []byte
			if tc.file != "" {
				before = mustRead(t, tc.file)
			}
			_, stderr, code := runKstripCLI(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (%s)", code, tc.code, stderr)
			}
			for _, m := range tc.msg {
				if !strings.Contains(stderr, m) {
					t.Errorf("stderr %q lacks %q", stderr, m)
				}
			}
			if tc.file != "" && !bytes.Equal(before, mustRead(t, tc.file)) {
				t.Error("the input file changed")
			}
		})
	}
	// --ignore-unknown turns the unknown name into a warning and strips.
	_, stderr, code := runKstripCLI("--ignore-unknown", "--keep", "mainbus,vioff", kern)
	if code != 0 || !strings.Contains(stderr, "warning: keep name \"vioff\" matches no entry (did you mean vioif?)") {
		t.Errorf("--ignore-unknown: exit %d %s", code, stderr)
	}
}

// TestKstripI386GenericGzip runs what the independent check runs: the
// default keep list on a gzipped, named i386 GENERIC-shaped kernel, and
// checks from the --json listing of the result that the paths to com0,
// ld and vioif stay enabled and fdc and pckbc do not.
func TestKstripI386GenericGzip(t *testing.T) {
	entries, provides, err := kstriptest.FromConfig(kstriptest.I386Generic)
	if err != nil {
		t.Fatal(err)
	}
	kern := testKernel(t, kstriptest.Options{Bits: 32, Entries: entries, Provides: provides})
	dir := filepath.Dir(kern)
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	zw.Name = "netbsd-GENERIC"
	zw.Write(mustRead(t, kern))
	zw.Close()
	gzIn := filepath.Join(dir, "netbsd-GENERIC.gz")
	os.WriteFile(gzIn, z.Bytes(), 0o644)
	out := filepath.Join(dir, "netbsd")
	if _, e, code := runKstripCLI("-o", out, gzIn); code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	stdout, _, code := runKstripCLI("--json", out)
	var j kstripJSON
	if err := json.Unmarshal([]byte(stdout), &j); err != nil || code != 0 || len(j.Entries) != len(entries) {
		t.Fatalf("--json: exit %d, %v", code, err)
	}
	mustBe := map[string]bool{
		"mainbus0 at root": true, "pci* at mainbus?": true, "pchb* at pci?": true, "pci* at pchb?": true,
		"ppb* at pci?": true, "pcib* at pci?": true, "isa0 at pcib?": true, "isa0 at mainbus?": true,
		"com0 at isa?": true, "virtio* at pci?": true, "ld* at virtio?": true, "vioif* at virtio?": true,
		"cpu* at mainbus?": true, "ioapic* at mainbus?": true, "acpi0 at mainbus0": true,
		"fdc0 at isa?": false, "pckbc0 at isa?": false, "pckbc* at acpi?": false, "fd* at fdc?": false,
		"ld* at aac?": false, "com* at puc?": false, "eisa0 at pceb?": false,
	}
	for i, e := range j.Entries {
		if want, ok := mustBe[entries[i].Spec]; ok && e.State.Disabled() == want {
			t.Errorf("%s is %v", entries[i].Spec, e.State)
		}
	}
}

// TestKstripMessages: a failed write names the output, which is what was
// not changed (it named the input, which never was going to change), and
// every line kstrip writes to stderr has the prefix its errors have
// ("kstrip: note: ..." beside unprefixed "kept parent ..." lines).
func TestKstripMessages(t *testing.T) {
	bin := smolvmmBin(t)
	kern := testKernel(t, kstriptest.Options{Bits: 32, Pad: 16 << 10})
	// Only mainbus: every other name of the default keep list is noted.
	bare := testKernel(t, kstriptest.Options{Bits: 32, Entries: []kstriptest.Entry{{Name: "mainbus", Attach: "mainbus"}}})
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.gz")
	// An older kernel: -o replaces no other file without -f.
	old := gzipBytes(mustRead(t, kern))
	if err := os.WriteFile(existing, old, 0o644); err != nil {
		t.Fatal(err)
	}
	// A 1-block file size limit fails the write after every check
	// passed (EFBIG: Go ignores SIGXFSZ).
	limited := func(args ...string) *exec.Cmd {
		return exec.Command("sh", append([]string{"-c", `ulimit -f 1 && exec "$0" "$@"`, bin, "kstrip"}, args...)...)
	}
	tests := []struct {
		name   string
		cmd    *exec.Cmd
		status int
		want   []string // in stderr
		stdout bool     // the summary is on stdout
	}{
		{"new output not written", limited("-o", filepath.Join(dir, "new.gz"), kern), 1,
			[]string{"file too large (" + filepath.Join(dir, "new.gz") + " was not written)"}, false},
		{"existing output unchanged", limited("-o", existing, kern), 1,
			[]string{"file too large (" + existing + " is unchanged)"}, false},
		{"notes", exec.Command(bin, "kstrip", "-o", filepath.Join(dir, "bare"), bare), 0,
			[]string{`smolvmm kstrip: note: default keep name "cpu" is not in this kernel`}, true},
		{"notes and summary on stderr", exec.Command(bin, "kstrip", "-o", "-", bare), 0,
			[]string{`smolvmm kstrip: note: default keep name "cpu" is not in this kernel`, "smolvmm kstrip: " + bare + ": disabled 0"}, false},
		// npx is kept where it exists (i386 before 6.0) and missing
		// from every later kernel: no note on each strip of one.
		{"no note for an era name", exec.Command(bin, "kstrip", "-o", filepath.Join(dir, "era"), kern), 0,
			nil, true},
		{"warnings and kept parents on stderr", exec.Command(bin, "kstrip", "--keep", "pckbd", "-o", "-", kern), 0,
			[]string{"smolvmm kstrip: warning: pckbc0 (pckbc_isa) stays enabled", "smolvmm kstrip: kept parent [21] pckbc0 (pckbc_isa) for pckbd* (pckbd)"}, false},
		// Standard output is a pipe here: refused, with the flag that
		// writes there (the refusal said only that a FIFO is no file).
		{"-o /dev/stdout on a pipe", exec.Command(bin, "kstrip", "-o", "/dev/stdout", kern), 1,
			[]string{"/dev/stdout is a FIFO, not a regular file", "; -o - writes the kernel to standard output"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			tt.cmd.Stdout, tt.cmd.Stderr = &stdout, &stderr
			err := tt.cmd.Run()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			msg := strings.TrimSuffix(stderr.String(), "\n")
			if status != tt.status {
				t.Errorf("status %d, want %d; stderr:\n%s", status, tt.status, msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr lacks %q:\n%s", w, msg)
				}
			}
			for _, line := range strings.Split(msg, "\n") {
				if msg != "" && !strings.HasPrefix(line, "smolvmm kstrip: ") {
					t.Errorf("stderr line without the prefix: %q", line)
				}
			}
			if strings.Contains(msg, `"npx"`) {
				t.Errorf("stderr names npx, which only pre-6.0 kernels have:\n%s", msg)
			}
			if strings.Contains(msg, "("+kern+" is unchanged)") {
				t.Errorf("the error speaks of the input: %s", msg)
			}
			if tt.stdout != strings.Contains(stdout.String(), "disabled ") {
				t.Errorf("summary on stdout: %v, want %v:\n%s", !tt.stdout, tt.stdout, stdout.String())
			}
			if tt.stdout && strings.Contains(stdout.String(), "smolvmm kstrip: ") {
				t.Errorf("stdout's summary is prefixed:\n%s", stdout.String())
			}
		})
	}
	if b, _ := os.ReadFile(existing); !bytes.Equal(b, old) {
		t.Errorf("%s now holds %.20q", existing, b)
	}
}

// TestKstripStdoutDevices: -o - refuses a terminal before anything is
// written (the check looked at the CLI's own writer, never an *os.File,
// and sent the kernel to the terminal), and a full standard output, for
// the kernel or the JSON, is said in one line (it was said twice: by
// kstrip and by the CLI).
func TestKstripStdoutDevices(t *testing.T) {
	bin := smolvmmBin(t)
	kern := testKernel(t, kstriptest.Options{Bits: 32, Pad: 16 << 10})
	ptm, pts := openPTYPair(t)
	// Drained, so that a kernel sent to the terminal fails the test
	// rather than filling the terminal's buffer.
	go io.Copy(io.Discard, ptm)
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	for _, tt := range []struct {
		name   string
		out    *os.File
		status int
		want   string
	}{
		{"terminal", pts, 2, "smolvmm kstrip: -o - would write a binary kernel to the terminal"},
		{"full", full, 1, "smolvmm kstrip: writing standard output: no space left on device (free some space, or redirect the output elsewhere)"},
		{"full, --json", full, 1, "smolvmm kstrip: writing standard output: no space left on device (free some space, or redirect the output elsewhere)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"kstrip", "-o", "-", kern}
			if strings.HasSuffix(tt.name, "--json") {
				args = []string{"kstrip", "--json", "--dry-run", kern}
			}
			cmd := exec.Command(bin, args...)
			cmd.Stdout = tt.out
			status, stderr := runStatus(t, cmd)
			msg := strings.TrimSuffix(stderr, "\n")
			if status != tt.status || !strings.HasPrefix(msg, tt.want) || strings.Count(msg, "\n") != 0 {
				t.Fatalf("status %d, stderr:\n%s\nwant status %d and one line starting %q", status, msg, tt.status, tt.want)
			}
		})
	}
}

// TestStripKernelNotes checks up's strip summary: a default name the
// kernel lacks is named, an era name (npx, missing from every kernel since
// NetBSD 6) is not. Neither is warned about: up chose the names itself,
// and warned "keep name \"acpicpu\" matches no entry (did you mean
// acpiapm?)" as if the user had mistyped one, then named it again in the
// summary.
func TestStripKernelNotes(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	out := filepath.Join(t.TempDir(), "stripped")
	tests := []struct {
		name string
		keep []string
		want string // "" when nothing may be named
	}{
		{"era name quiet", []string{"mainbus", "npx"}, ""},
		{"other name named", []string{"mainbus", "npx", "nosuchdrv"}, "(not in this kernel: nosuchdrv)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var warnings []string
			msg, err := stripKernel(kern, out, tt.keep, func(w string) { warnings = append(warnings, w) })
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range warnings {
				if strings.Contains(w, "nosuchdrv") || strings.Contains(w, "npx") || strings.Contains(w, "matches no entry") {
					t.Errorf("warning about a keep name up chose: %s", w)
				}
			}
			if strings.Contains(msg, "npx") {
				t.Errorf("summary names npx: %s", msg)
			}
			if tt.want == "" && strings.Contains(msg, "not in this kernel") || tt.want != "" && !strings.Contains(msg, tt.want) {
				t.Errorf("summary %q, want %q in it", msg, tt.want)
			}
		})
	}
}

// TestKstripKeepsModeAndOwner: the help says the kernel replaced in place
// keeps its mode, and so does OUT; an existing -o file took the kernel's
// mode, and a replaced file became the writer's (root's). Now a replaced
// file keeps its mode, owner and group, and a new -o file gets the
// kernel's mode.
func TestKstripKeepsModeAndOwner(t *testing.T) {
	const uid, gid = 4242, 4343
	root := os.Geteuid() == 0
	tests := []struct {
		name     string
		out      bool        // with -o; else in place
		existing os.FileMode // of OUT before, 0 for none
		mode     os.FileMode // of the file written, after
		owned    bool        // the file written is uid:gid's before and after
	}{
		{"new -o file", true, 0, 0o751, false},
		{"existing -o file", true, 0o600, 0o600, false},
		{"existing -o file of another user", true, 0o640, 0o640, true},
		{"in place", false, 0, 0o751, false},
		{"in place, another user's kernel", false, 0, 0o751, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.owned && !root {
				t.Skip("needs root to give files to another user")
			}
			kern := testKernel(t, kstriptest.Options{Bits: 32})
			os.Chmod(kern, 0o751)
			target, args := kern, []string{kern}
			if tt.out {
				target = filepath.Join(t.TempDir(), "out")
				args = []string{"-o", target, kern}
				if tt.existing != 0 {
					// An older kernel: -o replaces no other file without -f.
					if err := os.WriteFile(target, mustRead(t, kern), tt.existing); err != nil {
						t.Fatal(err)
					}
					os.Chmod(target, tt.existing)
				}
			}
			if tt.owned {
				if err := os.Chown(target, uid, gid); err != nil {
					t.Fatal(err)
				}
			}
			if _, stderr, code := runKstripCLI(args...); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			st, err := os.Stat(target)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tt.mode {
				t.Errorf("mode %v, want %v", st.Mode().Perm(), tt.mode)
			}
			sys := st.Sys().(*syscall.Stat_t)
			if tt.owned && (sys.Uid != uid || sys.Gid != gid) {
				t.Errorf("owner %d:%d, want %d:%d kept", sys.Uid, sys.Gid, uid, gid)
			}
		})
	}
}

// TestKstripReadOnlyKernelOutput: a new -o file took the kernel's mode
// as it was, so a kernel from read-only media (0444) gave a 0444 output
// and the same command run again refused it as write-protected. A new
// output now gets the kernel's bits plus owner write.
func TestKstripReadOnlyKernelOutput(t *testing.T) {
	tests := []struct {
		kernel, out os.FileMode
	}{
		{0o444, 0o644},
		{0o400, 0o600},
		{0o555, 0o755},
	}
	for _, tt := range tests {
		t.Run(tt.kernel.String(), func(t *testing.T) {
			kern := testKernel(t, kstriptest.Options{Bits: 32})
			if err := os.Chmod(kern, tt.kernel); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "netbsd")
			for run := 1; run <= 2; run++ {
				if _, stderr, code := runKstripCLI("-o", out, kern); code != 0 {
					t.Fatalf("run %d: exit %d: %s", run, code, stderr)
				}
				st, err := os.Stat(out)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != tt.out {
					t.Errorf("run %d: output mode %v, want %v", run, st.Mode().Perm(), tt.out)
				}
			}
		})
	}
}

// TestKstripPrintableNames: the summary printed the attachment names read
// from the kernel as they were, so a hostile kernel's escape sequences
// reached the terminal; they are now quoted with escapes.
func TestKstripPrintableNames(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32, NoDrivers: true, Entries: []kstriptest.Entry{
		{Name: "mainbus", Attach: "mainbus"},
		{Name: "evil", Attach: "evil\x1b]0;pwned\x07", State: 2, Parent: &kstriptest.Parent{IAttr: "mainbusbus", Name: "mainbus", Unit: -1}},
		{Name: "cpu", Attach: "cpu\x1b[31m", State: 2, Parent: &kstriptest.Parent{IAttr: "mainbusbus", Name: "mainbus", Unit: -1}},
	}})
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"dry run", []string{"-n", kern}, []string{`disable [1] evil* ("evil\x1b]0;pwned\a")`}},
		{"list", []string{"-l", kern}, []string{`"cpu\x1b[31m"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runKstripCLI(tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, c := range []byte(stdout + stderr) {
				if c < 0x20 && c != '\n' && c != '\t' || c >= 0x7f {
					t.Fatalf("output holds byte %#x:\n%q", c, stdout+stderr)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("output lacks %s:\n%s", w, stdout)
				}
			}
		})
	}
}

// TestKstripNetBSD10: the default strip of a NetBSD 10 kernel disables
// its slow probes (star entries included) without touching a unit, and
// --json says which struct cfdata the kernel has; a kernel whose version
// note and table disagree is refused, naming the offsets.
func TestKstripNetBSD10(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 64, Version: kstriptest.Version10})
	out := filepath.Join(t.TempDir(), "netbsd")
	if _, errOut, code := runKstripCLI("-o", out, kern); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	k, err := kstrip.Parse(mustRead(t, out))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range append(k.Match("fdc"), k.Match("pckbc")...) {
		if e := k.Entries[i]; !e.State.Disabled() || e.Unit != kstriptest.Generic[i].Unit {
			t.Errorf("cfdata[%d] %s: unit %d %v, want unit %d disabled", i, e.Label(), e.Unit, e.State, kstriptest.Generic[i].Unit)
		}
	}
	stdout, _, code := runKstripCLI("--json", out)
	var j kstripJSON
	if err := json.Unmarshal([]byte(stdout), &j); err != nil || code != 0 || j.StateSize != 1 || j.NetBSDVersion != kstriptest.Version10 {
		t.Errorf("--json: exit %d, %v, state size %d, version %d", code, err, j.StateSize, j.NetBSDVersion)
	}

	bad := testKernel(t, kstriptest.Options{Bits: 32, Version: kstriptest.Version10, Layout: 9})
	_, errOut, code := runKstripCLI("--list", bad)
	if code != 1 || !strings.Contains(errOut, "cfdata layout unknown") || !strings.Contains(errOut, "disagree") || !strings.Contains(errOut, "file offset 0x") {
		t.Errorf("disagreeing kernel: exit %d: %s", code, errOut)
	}
}

// TestKstripKASLRAdvice: a GENERIC_KASLR kernel (amd64, ET_REL) was read
// as if linked at a fixed address, and refused as having no terminator
// after 0 entries; it is named, and the advice is the kernel to strip.
func TestKstripKASLRAdvice(t *testing.T) {
	kaslr := filepath.Join(t.TempDir(), "netbsd-GENERIC_KASLR")
	sym, str := elftest.Symtab(2, false, []elftest.Sym{{Name: "start", Value: 0x20, Shndx: 1}})
	if err := os.WriteFile(kaslr, elftest.File{Class: 2, Type: 1, Secs: []elftest.Sec{
		{Name: ".text", Type: 1, Flags: 6, Data: make([]byte, 0x100)},
		{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)},
		{Name: ".symtab", Type: 2, Data: sym, Link: 4, Info: 1},
		{Name: ".strtab", Type: 3, Data: str},
	}}.Build(), 0o644); err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	err := testApp([]*cli.Command{kstripCommand()}, &o, &e).Run([]string{"smolvmm", "kstrip", "--list", kaslr})
	// One sentinel, whichever package refused the kernel.
	if !errors.Is(err, kstrip.ErrKASLR) || !errors.Is(err, netbsdboot.ErrKASLR) {
		t.Fatalf("error %v, want kstrip.ErrKASLR, which is netbsdboot.ErrKASLR", err)
	}
	want := "linked relocatable for KASLR (as GENERIC_KASLR is), whose cfdata has no address until NetBSD's prekern places the kernel at boot; kstrip edits a kernel linked at a fixed address (ET_EXEC) (" + kaslrAdvice + ")"
	if msg := advise(err); !strings.HasSuffix(msg, want) {
		t.Errorf("message %q\ndoes not end %q", msg, want)
	}
}

// TestKstripLostDefaults: --keep and -K replace the default keep list, so
// --keep vioif disabled the console and the disk without a word. A keep
// list that leaves no driver for a role the default list fills (cpu,
// com_isa, ld_virtio) is now warned of; another driver for it (wd) will
// do, and a strip with the default list, or with no console in the
// kernel, warns of nothing. A keep list without cpu, or --disable cpu,
// gave a kernel that never attaches its boot CPU (no interrupt stack, no
// CR4_OSXSAVE: it dies at its first interrupt) without a word; a
// --disable that empties a role is warned of too, with its own advice.
func TestKstripLostDefaults(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	generic := i386GenericKernel(t)
	noCom := testKernel(t, kstriptest.Options{Bits: 32, Entries: []kstriptest.Entry{
		{Name: "mainbus", Attach: "mainbus", State: 0},
		{Name: "vioif", Attach: "vioif", State: 2, Parent: &kstriptest.Parent{IAttr: "mainbus", Name: "mainbus", Unit: -1}},
	}})
	const keepText = ": --keep and -K replace the default keep list, which keeps "
	cpuLost := "warning: no cpu entry stays enabled, so the kernel attaches no boot CPU and crashes at its first interrupt"
	cpu := cpuLost + keepText + "cpu; add it to the list"
	console := "warning: no com entry stays enabled, so the kernel has no serial console" + keepText + "com_isa; add it to the list"
	disk := "warning: no ld, wd or sd entry stays enabled, so the kernel has no disk to mount the root file system from" + keepText + "ld_virtio; add it to the list"
	tests := []struct {
		name          string
		args          []string
		want, notWant []string
	}{
		{"keep vioif", []string{"--keep", "vioif", kern}, []string{cpu, console, disk}, nil},
		{"keep the console", []string{"--keep", "cpu,vioif,com_isa", kern}, []string{disk}, []string{console, cpuLost}},
		{"keep wd", []string{"--keep", "cpu,com0,wd", kern}, nil, []string{console, disk, cpuLost}},
		{"console disabled", []string{"--keep", "cpu,com_isa,ld_virtio", "--disable", "com", kern},
			[]string{"warning: no com entry stays enabled, so the kernel has no serial console: --disable com disables it; leave it out"}, []string{disk, "com_isa; add it"}},
		{"default list", []string{kern}, nil, []string{console, disk, cpuLost}},
		{"no com_isa in the kernel", []string{"--keep", "vioif", noCom}, nil, []string{console, disk}},
		{"i386 GENERIC without cpu", []string{"--keep", "vioif,com_isa,ld_virtio", generic}, []string{cpu}, []string{console, disk}},
		{"i386 GENERIC, cpu disabled", []string{"--disable", "cpu", generic},
			[]string{cpuLost + ": --disable cpu disables it; leave it out"}, []string{console, disk}},
		{"i386 GENERIC, default list with cpu* disabled", []string{"--disable", "fdc,cpu*", generic},
			[]string{cpuLost + ": --disable cpu* disables it; leave it out"}, []string{console, disk}},
		{"i386 GENERIC with cpu", []string{"--keep", "cpu,vioif,com_isa,ld_virtio", generic}, nil, []string{"warning"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runKstripCLI(append([]string{"-n"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(stderr, w) {
					t.Errorf("stderr has %q:\n%s", w, stderr)
				}
			}
		})
	}
	// An earlier strip left no cpu: an edit that does not restore it says
	// how to.
	out := filepath.Join(t.TempDir(), "k")
	if _, e, code := runKstripCLI("-o", out, "--keep", "vioif,com_isa,ld_virtio", generic); code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	if _, e, _ := runKstripCLI("--enable", "vioif", out); !strings.Contains(e, cpuLost+": --enable cpu enables it") {
		t.Errorf("--enable on a kernel without cpu: stderr lacks the advice:\n%s", e)
	}
}

// failWriter fails every write, counting them.
type failWriter struct{ writes int }

func (f *failWriter) Write([]byte) (int, error) {
	f.writes++
	return 0, errors.New("no room")
}

// TestKstripJSONStreamed: --json marshalled the whole table before
// writing a byte, 140 MB for the 65,536 entries a hostile kernel may
// have. It is now written an entry at a time, byte for byte what
// json.Encoder wrote: a writer that fails at once stops it after a few
// entries' worth of memory.
func TestKstripJSONStreamed(t *testing.T) {
	parent := &kstrip.Parent{IAttr: "isa", Name: "isa", Unit: -1}
	some := []kstrip.Entry{
		{Index: 0, Name: "mainbus", Attach: "mainbus", State: kstrip.NotFound},
		{Index: 1, Name: "com", Attach: "com_isa", Unit: 0, State: kstrip.DNotFound, Parent: parent, Offset: 0x1234},
		{Index: 2, Name: "<evil>\x1b[2J", Attach: "e&\"", State: kstrip.Star, Parent: &kstrip.Parent{IAttr: "x"}},
	}
	base := kstripJSON{Kernel: "netbsd\n<1>", PointerSize: 4, EntrySize: 24, StateSize: 2, NetBSDVersion: 901000000,
		Changes:  []kstrip.Change{{Index: 1, Label: "com0", Attach: "com_isa", From: kstrip.NotFound, To: kstrip.DNotFound}},
		Warnings: []string{"a \"warning\""}, Unknown: []kstrip.Unknown{{List: "keep", Name: "vioff", Suggestions: []string{"vioif"}}}, Written: true}
	for _, tt := range []struct {
		name    string
		entries []kstrip.Entry
	}{{"entries", some}, {"no entries", []kstrip.Entry{}}, {"nil entries", nil}} {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			o.Entries = tt.entries
			var want, got bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			if err := enc.Encode(o); err != nil {
				t.Fatal(err)
			}
			if err := writeKstripJSON(&got, &o); err != nil || got.String() != want.String() {
				t.Errorf("writeKstripJSON: %v\n%s\nwant\n%s", err, got.String(), want.String())
			}
		})
	}
	long := strings.Repeat("A", 63)
	many := make([]kstrip.Entry, 1<<16)
	for i := range many {
		many[i] = kstrip.Entry{Index: i, Name: long, Attach: long, State: kstrip.Star, Parent: &kstrip.Parent{IAttr: long, Name: long, Unit: -1}}
	}
	o := base
	o.Entries = many
	var fw failWriter
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := writeKstripJSON(&fw, &o)
	runtime.ReadMemStats(&after)
	if err == nil || fw.writes != 1 {
		t.Errorf("writeKstripJSON to a failing writer: %v after %d writes, want its error after one", err, fw.writes)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("writeKstripJSON of %d entries to a writer that fails at once allocated %d bytes, want at most 1 MiB", len(many), n)
	}
}

// i386GenericKernel builds a kernel whose cfdata has the shape of NetBSD
// 9's i386 GENERIC (no npx, as every kernel after 6.0).
func i386GenericKernel(t *testing.T) string {
	t.Helper()
	entries, provides, err := kstriptest.FromConfig(kstriptest.I386Generic)
	if err != nil {
		t.Fatal(err)
	}
	return testKernel(t, kstriptest.Options{Bits: 32, Entries: entries, Provides: provides})
}

// TestKstripDefaultListAsKeep: help and README show the default keep list
// with npx and say to give the whole list with a name added; on a 9.x
// kernel that failed, npx matching no entry. It now strips as the
// default list does, with a note that npx was skipped.
func TestKstripDefaultListAsKeep(t *testing.T) {
	kern := i386GenericKernel(t)
	dir := t.TempDir()
	def, withList := filepath.Join(dir, "def"), filepath.Join(dir, "list")
	if _, e, code := runKstripCLI("-o", def, kern); code != 0 {
		t.Fatalf("default list: exit %d: %s", code, e)
	}
	_, stderr, code := runKstripCLI("-o", withList, "--keep", strings.Join(strings.Fields(defaultKeepText()), ","), kern)
	if code != 0 {
		t.Fatalf("--keep with the default list: exit %d: %s", code, stderr)
	}
	if note := `smolvmm kstrip: note: keep name "npx" is not in this kernel: the i386 FPU driver of kernels before NetBSD 6.0, which later ones lack; skipped`; !strings.Contains(stderr, note) {
		t.Errorf("stderr lacks %q:\n%s", note, stderr)
	}
	if strings.Contains(stderr, "warning") {
		t.Errorf("warnings:\n%s", stderr)
	}
	if !bytes.Equal(mustRead(t, def), mustRead(t, withList)) {
		t.Error("the default list given with --keep strips otherwise than the default list")
	}
}

// TestKstripRefusesFetchCache: a strip in place of the release's kernel in
// smolvmm's fetch cache was undone by the next fetch ("did not match its
// SHA512 (removed); downloading it again"), and an edit of up's stripped
// copy by the next up (stripped again). kstrip now refuses to replace a
// file in a release's kernel directory of the cache, in place or -o,
// found by fetch's lock file beside it (any --cache) or under the
// default cache; a NetBSD release tree of the same shape (binary/kernel
// with its SHA512) is no cache, and reading the cache stays allowed.
func TestKstripRefusesFetchCache(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	kernel := gzipBytes(mustRead(t, testKernel(t, kstriptest.Options{Bits: 32})))
	// release lays out a release's kernel directory under root, with
	// fetch's lock file when lock is set, and returns its kernel's path.
	release := func(root string, lock bool) string {
		dir := filepath.Join(root, "9.3", "i386")
		os.MkdirAll(filepath.Join(dir, "kernel"), 0o755)
		if lock {
			os.WriteFile(filepath.Join(dir, ".lock"), nil, 0o644)
		}
		os.WriteFile(filepath.Join(dir, "kernel", "SHA512"), []byte("SHA512 (netbsd-GENERIC.gz) = 00\n"), 0o644)
		k := filepath.Join(dir, "kernel", "netbsd-GENERIC.gz")
		os.WriteFile(k, kernel, 0o644)
		return k
	}
	cached := release(t.TempDir(), true)
	kdir := filepath.Dir(cached)
	stripped := filepath.Join(kdir, "netbsd-GENERIC.kstrip-0123456789abcdef")
	os.WriteFile(stripped, gunzipBytes(t, kernel), 0o644)
	os.WriteFile(stripped+".sha512", []byte("00\n"), 0o644)
	link := filepath.Join(t.TempDir(), "k.gz")
	os.Symlink(cached, link)
	inDefault := release(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "smolvmm"), false)
	tree := release(filepath.Join(t.TempDir(), "NetBSD-9.3", "binary"), false)
	outside := filepath.Join(t.TempDir(), "netbsd")

	const releaseKernel = "is the release's kernel in smolvmm's fetch cache"
	defKdir := filepath.Dir(inDefault)
	tests := []struct {
		name string
		dir  string // working directory, "" to stay
		args []string
		want string // "" for success
	}{
		{"in place", "", []string{cached}, releaseKernel},
		// A relative path's directory is "." until made absolute.
		{"relative, in place", kdir, []string{"netbsd-GENERIC.gz"}, "in smolvmm's fetch cache (" + kdir + ")"},
		{"relative, default cache", defKdir, []string{"netbsd-GENERIC.gz"}, releaseKernel},
		{"relative -o into the cache", kdir, []string{"-o", "netbsd", cached}, "give -o a file outside the cache"},
		{"relative from above", filepath.Dir(kdir), []string{"kernel/netbsd-GENERIC.gz"}, releaseKernel},
		{"through a symlink", "", []string{link}, releaseKernel},
		{"default cache, no lock file", "", []string{inDefault}, releaseKernel},
		{"up's stripped copy", "", []string{"--enable", "ne0", stripped}, "is a kernel up stripped, in smolvmm's fetch cache"},
		{"-o into the cache", "", []string{"-o", filepath.Join(kdir, "netbsd"), cached}, "give -o a file outside the cache"},
		{"-o onto the cached kernel", "", []string{"-o", cached, tree}, "-o " + cached + " " + releaseKernel},
		{"-o outside", "", []string{"-o", outside, cached}, ""},
		{"dry run", "", []string{"-n", cached}, ""},
		{"list", "", []string{"--list", cached}, ""},
		{"release tree", "", []string{tree}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.dir != "" {
				t.Chdir(tt.dir)
			}
			_, stderr, code := runKstripCLI(tt.args...)
			if tt.want == "" {
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				return
			}
			if code != 2 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "-o") {
				t.Errorf("exit %d, want 2 and %q:\n%s", code, tt.want, stderr)
			}
		})
	}
	if !bytes.Equal(mustRead(t, cached), kernel) || !bytes.Equal(mustRead(t, inDefault), kernel) {
		t.Error("a cached kernel was changed")
	}
	if _, err := os.Stat(filepath.Join(kdir, "netbsd")); err == nil {
		t.Error("-o wrote into the cache")
	}
}

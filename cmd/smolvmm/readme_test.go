package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/vmm"
)

// readme is the repository's README.md as a reader sees it: a `\|` in a
// table cell shows as `|`.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), `\|`, "|")
}

// docFiles are the documentation's Markdown files, README.md first, then
// the guides of docs/ in name order, by their paths from the repository's
// root.
func docFiles(t *testing.T) []string {
	t.Helper()
	guides, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(guides) == 0 {
		t.Fatal("no docs/*.md: is the repository's root ../..?")
	}
	files := []string{"README.md"}
	for _, g := range guides {
		files = append(files, filepath.ToSlash(strings.TrimPrefix(g, "../../")))
	}
	return files
}

// docs is the documentation as a whole, as a reader sees it: README.md,
// then every guide in docs/ (docFiles), each read as readme reads the
// README. A fact checked here may be in the README's overview or in the
// guide it links to.
func docs(t *testing.T) string {
	t.Helper()
	var all []string
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(filepath.Join("../..", f))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, strings.ReplaceAll(string(b), `\|`, "|"))
	}
	return strings.Join(all, "\n\n")
}

// TestReadmeCommandRows checks that the README's table of commands shows
// every visible flag of each command (a row may say "[run's flags]" for
// the flags it shares with run, "[run's flags but -k, ...]" when it lacks
// some: those must be exactly run's visible flags the command lacks). up's
// row said "[run's flags]" though up had no --snapshot or --restore.
func TestReadmeCommandRows(t *testing.T) {
	text := readme(t)
	rows := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if m := regexp.MustCompile("^\\| `smolvmm ([a-z]+)[ `]").FindStringSubmatch(line); m != nil {
			rows[m[1]] += line
		}
	}
	runFlagNames := map[string]bool{}
	for _, c := range commands() {
		if c.Name == "run" {
			for _, f := range c.Flags {
				runFlagNames[f.Names()[0]] = true
			}
		}
	}
	for _, c := range commands() {
		if c.Hidden {
			continue
		}
		row, ok := rows[c.Name]
		if !ok {
			t.Errorf("README has no row for smolvmm %s", c.Name)
			continue
		}
		if m := regexp.MustCompile(`\[run's flags( but ([^\]]*))?\]`).FindStringSubmatch(row); m != nil && c.Name != "run" {
			listed := map[string]bool{}
			for _, n := range strings.Split(m[2], ", ") {
				if n != "" {
					listed[strings.TrimLeft(n, "-")] = true
				}
			}
			own := flagNames(c.Flags)
			for _, rc := range commands() {
				if rc.Name != "run" {
					continue
				}
				for _, f := range rc.Flags {
					if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
						continue
					}
					n := namesOf(f)
					lacks := !own[n[0]]
					said := false
					for _, name := range n {
						said = said || listed[name]
					}
					switch {
					case lacks && !said:
						t.Errorf("README's row for smolvmm %s says it takes run's flags, but it has no %s: list it after \"but\"", c.Name, flagSpelling(f))
					case !lacks && said:
						t.Errorf("README's row for smolvmm %s lists %s as a run flag it lacks, but it has it", c.Name, flagSpelling(f))
					}
				}
			}
		}
		for _, f := range c.Flags {
			if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
				continue
			}
			names := f.Names()
			if runFlagNames[names[0]] && strings.Contains(row, "[run's flags") {
				continue
			}
			found := false
			for _, n := range names {
				dash := "--"
				if len(n) == 1 {
					dash = "-"
				}
				if regexp.MustCompile(`[\[ ]` + regexp.QuoteMeta(dash+n) + `[\] ]`).MatchString(row) {
					found = true
				}
			}
			if !found {
				t.Errorf("README's row for smolvmm %s lacks %v", c.Name, names)
			}
		}
	}
}

// TestReadmeFuzzTargets: the documentation's count of fuzz targets (in
// docs/testing.md) is the
// number make fuzz runs: each "func Fuzz" at the start of a line of a
// _test.go file of the module's packages (it said 21 when there were 22).
func TestReadmeFuzzTargets(t *testing.T) {
	m := regexp.MustCompile(`inputs for each of its (\d+) targets`).FindStringSubmatch(docs(t))
	if m == nil {
		t.Fatal(`the documentation (README.md, docs/*.md) lacks "inputs for each of its N targets"`)
	}
	fuzzFunc := regexp.MustCompile(`(?m)^func Fuzz[A-Za-z0-9_]*\(`)
	root := filepath.Join("..", "..")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Where go list ./... finds no package of the module.
			name := d.Name()
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); path != root && err == nil {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n += len(fuzzFunc.FindAll(b, -1))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("found no fuzz targets: is the module root ../..?")
	}
	if m[1] != strconv.Itoa(n) {
		t.Errorf("the documentation says the fuzzing runs %s targets; the module has %d (func Fuzz... in _test.go files)", m[1], n)
	}
}

// TestReadmeExitStatuses checks that the README lists the statuses the
// program ends with, 141 (a closed pipe, SIGPIPE) among them, and points
// to docs/NETBSD-BOOT-NOTES.md (TestNoSharedDocs keeps it from citing the
// documents outside the repository).
func TestReadmeExitStatuses(t *testing.T) {
	text := readme(t)
	for _, s := range []string{"130", "141", "SIGPIPE", "(v<<1)|1"} {
		if !strings.Contains(text, s) {
			t.Errorf("README does not mention %s", s)
		}
	}
	if _, err := os.Stat("../../docs/NETBSD-BOOT-NOTES.md"); err != nil || !strings.Contains(text, "docs/NETBSD-BOOT-NOTES.md") {
		t.Errorf("README does not point to docs/NETBSD-BOOT-NOTES.md, or it is missing: %v", err)
	}
}

// TestReadmeLibraryExample checks that the README's library example is
// vmm's Example, which compiles and runs: the same body, in a main, and
// that the README's whole program, imports included, builds in this
// module (comparing the body and a few imports let a README missing
// "bufio" pass).
func TestReadmeLibraryExample(t *testing.T) {
	text := readme(t)
	src, err := os.ReadFile("../../vmm/example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	ex := string(src)
	start := strings.Index(ex, "func Example() {\n")
	end := strings.Index(ex, "\t// Prints (TestExample")
	if start < 0 || end < start {
		t.Fatalf("vmm/example_test.go: no Example body found")
	}
	body := ex[start+len("func Example() {\n") : end]
	const open = "```go\npackage main\n"
	i := strings.Index(text, open)
	if i < 0 {
		t.Fatal("README has no Go program (```go, package main)")
	}
	prog, _, ok := strings.Cut(text[i+len("```go\n"):], "```")
	if !ok || !strings.Contains(prog, "func main() {\n"+body+"}\n") {
		t.Errorf("README's library example is not vmm's Example; its body is:\n%s", body)
	}
	file := filepath.Join(t.TempDir(), "main.go")
	if err := os.WriteFile(file, []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	// Built from here, the file's imports resolve in this module.
	out, err := exec.Command("go", "build", "-o", os.DevNull, file).CombinedOutput()
	if err != nil {
		t.Errorf("README's library example does not build: %v\n%s", err, out)
	}
}

// TestSIGPIPE: as the README says, smolvmm writing to a reader that went
// away dies of SIGPIPE (status 141 in a shell), as other programs do.
func TestSIGPIPE(t *testing.T) {
	bin := smolvmmBin(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer w.Close()
	cmd := exec.Command(bin, "--help")
	cmd.Stdout = w
	err = cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("smolvmm --help into a closed pipe: %v, want death by SIGPIPE", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
		t.Errorf("smolvmm --help into a closed pipe: %v, want death by SIGPIPE", err)
	}
}

// TestUnitsAreMiB: sizes of 2^20 bytes are MiB in every --help text and
// in the documentation (README.md and each guide in docs/); "wrote a.img (10 MB)" stood beside "needs 10 MiB of
// guest memory". (The messages themselves are checked where they are
// made: mkimg, up, imagebuilder.)
func TestUnitsAreMiB(t *testing.T) {
	mb := regexp.MustCompile(`\bMB\b`)
	bin := smolvmmBin(t)
	texts := map[string]string{}
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(filepath.Join("../..", f))
		if err != nil {
			t.Fatal(err)
		}
		texts[f] = string(b)
	}
	for _, c := range commands() {
		out, err := exec.Command(bin, c.Name, "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --help: %v\n%s", c.Name, err, out)
		}
		texts["smolvmm "+c.Name+" --help"] = string(out)
	}
	for name, text := range texts {
		for _, line := range strings.Split(text, "\n") {
			if mb.MatchString(line) {
				t.Errorf("%s says MB: %s", name, strings.TrimSpace(line))
			}
		}
	}
}

// TestReadmeSeccompFigures checks the documentation's sizes of the seccomp
// filter (docs/containment.md)
// against the filters contain builds (the network, --ready-port,
// --snapshot), as the static binary has them whichever build runs the
// test, and its list of vmm.RunIoctls against their number. It said
// "170 to 200 instructions" (they were 175 to 238) and named 5 of 18
// ioctls; then, computed from a cgo build's sizes less 2, 268 and 271 for
// 265 and 268, and "30 more with --snapshot" for 31 to 42.
func TestReadmeSeccompFigures(t *testing.T) {
	text := strings.Join(strings.Fields(docs(t)), " ")
	// static and cgo sizes of a filter, by network (none or a tap,
	// user:NAME, user or a tap with --ready-port, user:NAME with
	// --ready-port) and --snapshot. "387 with both of the last" read as
	// --net user with --ready-port, which is 384.
	type sizes struct{ static, cgo int }
	var nets [4][2]sizes
	for i, f := range []sandbox.Filter{{}, {UnixSockets: true}, {Sockets: true}, {Sockets: true, UnixSockets: true}} {
		for snap := range 2 {
			f.Ioctls = vmm.RunIoctls()
			f.Truncate, f.SetFileTimes = snap == 1, snap == 1
			static, cgo, err := f.Sizes()
			if err != nil {
				t.Fatal(err)
			}
			nets[i][snap] = sizes{static, cgo}
		}
	}
	span := func(d []int) string {
		if lo, hi := slices.Min(d), slices.Max(d); lo != hi {
			return fmt.Sprintf("%d to %d", lo, hi)
		}
		return fmt.Sprint(d[0])
	}
	var snapMore, cgoMore []int
	for _, n := range nets {
		snapMore = append(snapMore, n[1].static-n[0].static)
		for _, s := range n {
			cgoMore = append(cgoMore, s.cgo-s.static)
		}
	}
	want := fmt.Sprintf("%d to %d instructions: %d with `--net none` or a tap, %d with `--net user:NAME`, %d with `--net user` (`--ready-port` adds none there) or a tap and `--ready-port`, %d with `--net user:NAME` and `--ready-port`; %s more with `--snapshot`; %s more in a cgo build",
		nets[0][0].static, nets[3][1].static, nets[0][0].static, nets[1][0].static, nets[2][0].static, nets[3][0].static, span(snapMore), span(cgoMore))
	if !strings.Contains(text, want) {
		t.Errorf("the documentation (README.md, docs/*.md) lacks %q", want)
	}
	i := strings.Index(text, "(`vmm.RunIoctls`")
	if i < 0 {
		t.Fatal("the documentation (README.md, docs/*.md) does not list vmm.RunIoctls")
	}
	list, _, _ := strings.Cut(text[i:], "), ")
	if n, want := strings.Count(list, "`KVM_"), len(vmm.RunIoctls()); n != want || !strings.Contains(list, fmt.Sprintf("%d of them", want)) {
		t.Errorf("the documentation names %d ioctls of vmm.RunIoctls, which has %d: %s", n, want, list)
	}
}

// TestRunHelpMatchesReadme: run --help and the README's table give the
// same exit statuses (the ones over 100 and the formulas), name the same
// signals beside them, and the documentation (README.md, docs/*.md) names
// the same Ctrl-A keys as run --help and Ctrl-A h print. The help
// lacked 141, 148, 159, 128+n, SIGHUP, Ctrl-A h and Ctrl-A s.
func TestRunHelpMatchesReadme(t *testing.T) {
	text := strings.Join(strings.Fields(readme(t)), " ")
	start := strings.Index(text, "Exit status of `run` and the other commands:")
	end := strings.Index(text, "`up` ends as `run` does")
	if start < 0 || end < start {
		t.Fatal("README has no paragraph on run's exit status")
	}
	readmeExits := text[start:end]
	help := strings.Join(strings.Fields(runCommand().Description), " ")
	statuses := regexp.MustCompile(`\(v<<1\)\|1|128\+n|\b1[0-9][0-9]\b|\bSIG[A-Z0-9]+\b`)
	set := func(s string, re *regexp.Regexp, group int) map[string]bool {
		m := map[string]bool{}
		for _, sm := range re.FindAllStringSubmatch(s, -1) {
			m[sm[group]] = true
		}
		return m
	}
	compare := func(what, aName string, a map[string]bool, bName string, b map[string]bool) {
		t.Helper()
		for k := range a {
			if !b[k] {
				t.Errorf("%s: %s gives %s, %s does not", what, aName, k, bName)
			}
		}
		for k := range b {
			if !a[k] {
				t.Errorf("%s: %s gives %s, %s does not", what, bName, k, aName)
			}
		}
	}
	compare("exit statuses", "run --help", set(help, statuses, 0), "README", set(readmeExits, statuses, 0))
	keys := regexp.MustCompile("Ctrl-A (Ctrl-A|[a-z?])\\b")
	helpKeys := set(help, keys, 1)
	compare("console keys", "run --help", helpKeys, "the documentation", set(docs(t), keys, 1))
	printed := map[string]bool{}
	for _, m := range regexp.MustCompile(`C-a (C-a|[a-z?]) `).FindAllStringSubmatch(escapeHelp(true), -1) {
		printed[strings.ReplaceAll(m[1], "C-a", "Ctrl-A")] = true
	}
	compare("console keys", "run --help", helpKeys, "Ctrl-A h", printed)
}

// TestReadmeNetSocketDirs: every directory net --help says a network's
// socket goes in by default is in the documentation too (docs/network.md) (it lacked the one of a
// user without XDG_RUNTIME_DIR, /tmp/smolvmm-UID/net).
func TestReadmeNetSocketDirs(t *testing.T) {
	text := docs(t)
	dirs := regexp.MustCompile(`(\$XDG_RUNTIME_DIR|/run|/tmp)/smolvmm[-A-Z]*/net`).FindAllString(netCommand().Description, -1)
	if len(dirs) < 3 {
		t.Fatalf("net --help names %q; want the three default directories", dirs)
	}
	for _, d := range dirs {
		if !strings.Contains(text, d) {
			t.Errorf("net --help names %s, the documentation (README.md, docs/*.md) does not", d)
		}
	}
}

// TestReadmeKeysOnATerminal: the README says the Ctrl-A keys work on a
// terminal, as run --help does: with standard input a pipe the input goes
// to the guest untouched (it said "On the console", and "stopped by Ctrl-A
// x" in the exit statuses, without the terminal).
func TestReadmeKeysOnATerminal(t *testing.T) {
	text := strings.Join(strings.Fields(readme(t)), " ")
	// The paragraph after fetch's that lists the keys.
	i := strings.Index(text, "`Ctrl-A h` prints these keys on standard error")
	if i < 0 {
		t.Fatal("README does not list the console keys")
	}
	para := text[strings.LastIndex(text[:i], "`Ctrl-A x` quits")-40 : i]
	if !strings.Contains(para, "on a terminal") {
		t.Errorf("README's console keys are not said to work on a terminal: %q", para)
	}
	for _, s := range []string{"stopped by Ctrl-A x (on a terminal)", "input from a pipe or a file goes to the guest as it is"} {
		if !strings.Contains(text, s) {
			t.Errorf("README lacks %q", s)
		}
	}
	help := strings.Join(strings.Fields(runCommand().Description), " ")
	if !strings.Contains(help, "On a terminal, Ctrl-A x quits") {
		t.Errorf("run --help no longer says the keys work on a terminal")
	}
}

// TestReadmeListsPackages: the README's list of the library's packages
// ("Packages: ...") names every top-level package of the module but cmd
// and internal. It lacked netbsdboot, bootplan and snapshot.
func TestReadmeListsPackages(t *testing.T) {
	text := readme(t)
	i := strings.Index(text, "\nPackages: ")
	if i < 0 {
		t.Fatal(`README has no "Packages: " paragraph`)
	}
	para, _, _ := strings.Cut(text[i+1:], "\n\n")
	entries, err := os.ReadDir("../..")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || name == "cmd" || name == "internal" || strings.HasPrefix(name, ".") {
			continue
		}
		if gofiles, _ := filepath.Glob(filepath.Join("../..", name, "*.go")); len(gofiles) == 0 {
			continue // docs, not a package
		}
		n++
		if !strings.Contains(para, "`"+name+"`") {
			t.Errorf("README's package list lacks `%s`", name)
		}
	}
	if n < 10 {
		t.Fatalf("only %d packages found", n)
	}
}

// TestMakeBenchWithoutSeccomp: `make bench` boots the demo guest with the
// seccomp filter and again without it (--no-seccomp), the same bench
// otherwise, so that the filter's cost comes out of it rather than a
// hand-run; and the documentation's paragraph on the filter's cost
// (docs/containment.md) points there.
// The target used to run with the filter only.
func TestMakeBenchWithoutSeccomp(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	_, recipe, ok := strings.Cut(string(b), "\nbench:")
	if !ok {
		t.Fatal("the Makefile has no bench target")
	}
	recipe, _, _ = strings.Cut(recipe, "\n\n")
	recipe = strings.ReplaceAll(recipe, "\\\n", " ")
	var with, without string
	for _, line := range strings.Split(recipe, "\n") {
		if !strings.Contains(line, "$(BIN) bench ") || strings.Contains(line, "--restore") {
			continue
		}
		if strings.Contains(line, "--no-seccomp") {
			without = line
		} else {
			with = line
		}
	}
	if with == "" || without == "" {
		t.Fatalf("make bench does not boot the demo guest both with and without --no-seccomp:\n%s", recipe)
	}
	// The same boots: count, warm-up and ready line.
	for _, flag := range []string{"-n $(BENCH_BOOTS)", "--warmup 2", "--ready '^smolvmm-demo: done'"} {
		if !strings.Contains(with, flag) || !strings.Contains(without, flag) {
			t.Errorf("make bench's boots with and without the filter differ in %s:\n%s\n%s", flag, with, without)
		}
	}
	text := strings.Join(strings.Fields(docs(t)), " ")
	if !strings.Contains(text, "`--no-seccomp` turns the filter off for debugging. Cost: `make bench`") {
		t.Error("the documentation's paragraph on the seccomp filter's cost does not point to make bench")
	}
}

// TestNoSharedDocs: no Go file, Markdown file (README, docs/), Makefile or
// CI script cites the project's shared documents beside the repository,
// which a reader of it does not have; docs/NETBSD-BOOT-NOTES.md says what
// they said about booting NetBSD. The README was fixed while package docs
// and comments (multiboot, kstrip, netbsdboot, vmm, nestedkvm) and the
// notes themselves still cited them.
func TestNoSharedDocs(t *testing.T) {
	// Spelled in pieces so that this file does not cite them itself.
	cited := []string{"shared/" + "docs", "NETBSD-BOOT" + ".md", "KVM-HERE" + ".md", "DESIGN" + ".md"}
	root := "../.."
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") && d.Name() != ".ci" || d.Name() == "bin" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, ".md") && d.Name() != "Makefile" && !strings.HasPrefix(rel, ".ci"+string(filepath.Separator)) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			for _, c := range cited {
				if strings.Contains(line, c) {
					t.Errorf("%s:%d cites %s, outside the repository (point to docs/NETBSD-BOOT-NOTES.md or say what it says): %s", rel, i+1, c, strings.TrimSpace(line))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Errorf("checked %d files only: the walk from %s missed the repository", checked, root)
	}
}

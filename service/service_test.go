package service_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/smolvmm/smolvmm/service"
)

func TestBuiltin(t *testing.T) {
	for _, tc := range []struct {
		name, rcHas string
		cfg         string
	}{
		{"rescue", "\nsh\n", "[rescue] 0"},
		{"base", "shutdown -p now", "[base etc] 0"},
	} {
		s, err := service.Load(tc.name, "")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := fs.ReadFile(s.FS, "etc/rc")
		if err != nil || !strings.Contains(string(rc), tc.rcHas) || !strings.Contains(string(rc), ". /etc/include/basicrc") {
			t.Errorf("%s etc/rc = %q %v", tc.name, rc, err)
		}
		if got := fmt.Sprint(s.Config.Sets, s.Config.SizeMB); got != tc.cfg {
			t.Errorf("%s config = %s, want %s", tc.name, got, tc.cfg)
		}
	}
	s, _ := service.Load("rescue", "")
	b, err := fs.ReadFile(s.Common, "basicrc")
	for _, want := range []string{"mount -a", "10.0.2.15", "netmask 255.255.255.0", "add default 10.0.2.2", "nameserver 10.0.2.3", "PATH="} {
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("basicrc lacks %q (%v)", want, err)
		}
	}
}

func write(t *testing.T, root string, files map[string]string) {
	for p, c := range files {
		fp := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(fp), 0755)
		if err := os.WriteFile(fp, []byte(c), 0644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestServiceDir(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"web/etc/rc": "httpd\n", "web/etc/httpd.conf": "x", "web/postinst/10-a.sh": "true",
		"web/service.conf": "sets = rescue, base # comment\nsize=auto\n",
		"bad/etc/motd":     "hi", "bad/postinst/readme.txt": "x",
		"empty/etc/rc": "",
		"conf/etc/rc":  "sh", "conf/service.conf": "size=huge\n",
	})
	s, err := service.Load("web", dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Embedded || fmt.Sprint(s.Config) != "{[rescue base] 0}" {
		t.Errorf("web: embedded=%v config=%v", s.Embedded, s.Config)
	}
	if p, _ := s.Postinst(); fmt.Sprint(p) != "[postinst/10-a.sh]" {
		t.Errorf("postinst = %v", p)
	}
	if _, err := fs.Stat(s.Common, "basicrc"); err != nil {
		t.Errorf("a service dir without common/ must fall back to the embedded one: %v", err)
	}
	if s, err := service.Load("rescue", dir); err != nil || !s.Embedded {
		t.Errorf("rescue with a service dir lacking it: %v", err)
	}
	for _, tc := range []struct{ name, want string }{
		{"bad", "etc/rc is missing"},
		{"empty", "etc/rc is empty"},
		{"conf", `size "huge"`},
		{"nosuch", `no service "nosuch" (known: bad, base, conf, empty, rescue, web)`},
		{"../x", "plain directory name"},
	} {
		_, err := service.Load(tc.name, dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q): got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"", "{[rescue] 10}"},
		{"sets=base,etc\nsize=200", "{[base etc] 200}"},
		{"size=auto", "{[rescue] 0}"},
		{"sets=", "set name \"\""},
		// Looked up as directories, these named the directory searched.
		{"sets=..", "set name \"..\": want names like rescue,base (no / or \\, ?, # or %, not starting with \".\")"},
		{"sets=rescue,.", "set name \".\""},
		{"sets=.hidden", "set name \".hidden\""},
		{"sets=a/b", "set name \"a/b\""},
		{"sets=rescue.v2", "{[rescue.v2] 10}"},
		{"sets = rescue , base ", "{[rescue base] 10}"},
		// Names fetch refuses were taken, and named in advice to run
		// smolvmm fetch rescue base, or looked up as sets no mirror has.
		{"size=20\nsets=rescue base", `service.conf:2: set name "rescue base": want names like rescue,base: unquoted, separated by commas, without spaces`},
		{`sets="rescue"`, `service.conf:1: set name "\"rescue\"": want names like rescue,base: unquoted`},
		{`sets='rescue',base`, `service.conf:1: set name "'rescue'": want names like rescue,base: unquoted`},
		{"sets=res\tcue", `set name "res\tcue": want names like rescue,base: unquoted`},
		{"sets=rescue?x", `service.conf:1: set name "rescue?x": want names like rescue,base (no / or \, ?, # or %, not starting with ".")`},
		{"sets=base,a%2f", `set name "a%2f": want names like rescue,base (no / or \, ?, # or %`},
		{"sets=" + strings.Repeat("x", 65), `: want a name of at most 64 bytes`},
		{"sets=" + strings.Repeat("x", 64), "{[" + strings.Repeat("x", 64) + "] 10}"},
		// A key given twice: the last was taken without a word.
		{"sets=base\nsize=20\nsets=etc", "service.conf:3: sets given again (first on line 1): give each key once"},
		{"size=20\n# size=30\nsize=auto", "service.conf:3: size given again (first on line 1)"},
		{"colour=blue", "unknown key \"colour\""},
		{"justtext", "service.conf:1: the line is not key=value"},
		{"size=1\n\nroot:$6$salt$hash:19000::::::", "service.conf:3: the line is not key=value"},
		{"size=0", "size \"0\""},
		// Read twice into the image, and named twice in the advice to
		// fetch the sets.
		{"size=20\nsets=base,etc,base", `service.conf:2: set "base" named twice: name each set once`},
		{"sets=base,base", `service.conf:1: set "base" named twice`},
		{"sets=base,Base", "{[base Base] 10}"},
		// One set, with and without its archive's extension: the
		// fetcher took them as one file, the builder read it twice.
		{"sets=rescue,rescue.tgz", `service.conf:1: set "rescue" named twice ("rescue", then "rescue.tgz"): name each set once`},
		{"sets=base.tar.xz,etc,base", `service.conf:1: set "base" named twice ("base.tar.xz", then "base"): name each set once`},
		{"sets=base.tgz,base.tar.xz", `set "base" named twice ("base.tgz", then "base.tar.xz")`},
		{"sets=rescue.tar,rescue.txz", `set "rescue" named twice`},
		{"sets=rescue.tgz,rescue.tgz", `set "rescue.tgz" named twice: name each set once`},
		{"sets=rescue,rescue.v2,rescue.tgz.v2", "{[rescue rescue.v2 rescue.tgz.v2] 10}"},
		// Lines past bufio.Scanner's 64 KiB: "bufio.Scanner: token too
		// long", naming neither file nor line, and the sets read so far.
		{"sets=base\n#" + strings.Repeat("x", 70000) + "\nsize=20", "{[base] 20}"},
		{"size=20\nsets=" + manySets(14000, ","), "{[" + manySets(14000, " ") + "] 20}"},
		{"sets=base\n" + strings.Repeat("y", 70000), "service.conf:2: the line is not key=value"},
		// A byte order mark, as some editors save UTF-8, was taken as
		// part of the first key: unknown key "\ufeffsets".
		{"\ufeffsets=base\nsize=20", "{[base] 20}"},
		{"\ufeff# sets\nsize=20", "{[rescue] 20}"},
		{"size=20\n\ufeffsets=base", `service.conf:2: unknown key "\ufeffsets"`},
	} {
		c, err := service.ParseConfig(tc.text, "service.conf")
		got := fmt.Sprint(c)
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("ParseConfig(%.80q) = %.200s, want %.200s", tc.text, got, tc.want)
		}
		// A line that is not key=value is not quoted: service.conf may
		// be a link to a file that is not the user's to read.
		if strings.Contains(tc.want, "not key=value") && (strings.Contains(got, "justtext") || strings.Contains(got, "salt") || strings.Contains(got, "yyy")) {
			t.Errorf("ParseConfig(%q) = %s: quotes the line", tc.text, got)
		}
	}
}

// manySets is n distinct set names joined by sep.
func manySets(n int, sep string) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("s%d", i)
	}
	return strings.Join(names, sep)
}

func ExampleLoad() {
	s, err := service.Load("rescue", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Name, s.Config.Sets, s.Config.SizeMB)
	// Output: rescue [rescue] 0
}

func ExampleParseConfig() {
	c, _ := service.ParseConfig("sets=base,etc\nsize=auto\n", "service.conf")
	fmt.Println(c.Sets, c.SizeMB)
	// Output: [base etc] 0
}

// TestLoadFIFORc: an etc/rc that is a FIFO, or a symlink to one, is
// refused as not a regular file, without blocking: Validate's stat went
// through fs.Sub of os.DirFS, which opens the file to stat it, and the
// open of a FIFO with no writer blocked Load (and up) for ever.
func TestLoadFIFORc(t *testing.T) {
	for _, link := range []bool{false, true} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "svc/etc"), 0o755)
		fifo := filepath.Join(dir, "svc/etc/rc")
		if link {
			fifo = filepath.Join(dir, "svc/rc.fifo")
			os.Symlink("../rc.fifo", filepath.Join(dir, "svc/etc/rc"))
		}
		if err := syscall.Mkfifo(fifo, 0o644); err != nil {
			t.Fatal(err)
		}
		// The full path and what etc/rc must be: it said only "etc/rc is
		// not a regular file".
		_, err := service.Load("svc", dir)
		want := filepath.Join(dir, "svc/etc/rc") + " is a FIFO, not a regular file: etc/rc must be a regular file (or a symlink to one within the service), the script the VM runs at boot"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("link %v: Load: %v, want %q", link, err, want)
		}
	}
}

// TestLoadFIFOConfig: a service.conf that is a FIFO is refused, naming
// it, without blocking: ReadConfig read it, and the open blocked Load.
func TestLoadFIFOConfig(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "svc/etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "svc/etc/rc"), []byte("sh\n"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(dir, "svc", service.ConfigFile), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := service.Load("svc", dir)
	want := filepath.Join(dir, "svc", service.ConfigFile) + " is a FIFO, not a regular file: service.conf must be a regular file of key=value settings (sets=, size=), or absent"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Load: %v, want %q", err, want)
	}
}

// TestCheckName: a name no service directory can have is refused before
// any look-up, matching ErrName (one over NAME_MAX reached the file
// system: "lstat NAME: file name too long").
func TestCheckName(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"", `service name "": want a plain directory name`},
		{"..", `service name "..": want a plain directory name`},
		{"a/b", `service name "a/b": want a plain directory name`},
		{"common", `service name "common"`},
		{strings.Repeat("s", 256), `service name "ssssssssssssssss"... is 256 bytes: want a plain directory name of at most 255 bytes`},
	} {
		err := service.CheckName(tc.name)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !errors.Is(err, service.ErrName) {
			t.Errorf("CheckName(%.20q): got %v, want %q matching ErrName", tc.name, err, tc.want)
		}
		if _, err := service.Load(tc.name, ""); !errors.Is(err, service.ErrName) {
			t.Errorf("Load(%.20q): got %v, want ErrName", tc.name, err)
		}
	}
	for _, ok := range []string{"rescue", strings.Repeat("s", 255)} {
		if err := service.CheckName(ok); err != nil {
			t.Errorf("CheckName(%.20q): %v", ok, err)
		}
	}
}

// TestValidateOneLine: a service's problems are said on one line, as
// every error is printed; they were one line each under a heading.
func TestValidateOneLine(t *testing.T) {
	fsys := fstest.MapFS{"etc/hosts": {Data: []byte("x")}, "postinst/notes.txt": {Data: []byte("x")}, "postinst/d.sh/x": {Data: []byte("x")}}
	err := service.Validate(fsys, "svc/bad")
	want := `service svc/bad is not valid: etc/rc is missing: it is the script the VM runs at boot (e.g. ". /etc/include/basicrc; sh"); postinst/d.sh is a directory: a postinst script must be a file`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

// TestLoadLinksStayInside: a service directory's files are read only
// inside it (common/ inside the service directory given), so a build by
// root of a directory another user can write copies no root-only host
// file: common/, the service itself, its etc/ or its service.conf
// linking outside is refused, naming the link and its target, and quoting
// nothing of the outside file. Links that stay inside are followed.
func TestLoadLinksStayInside(t *testing.T) {
	const secret = "root:$6$secret$hash:19000::::::"
	for _, tc := range []struct {
		name  string
		setup func(dir, outside string) // outside holds etc/rc, shadow, private/
		link  string                    // the link refused, relative to dir
		ok    func(t *testing.T, s *service.Service)
		say   string // in the refusal, besides the link and its target
	}{
		{name: "common out", link: "common", setup: func(dir, outside string) {
			os.Symlink(filepath.Join(outside, "private"), filepath.Join(dir, "common"))
		}},
		{name: "common out relative", link: "common", setup: func(dir, outside string) {
			rel, _ := filepath.Rel(dir, filepath.Join(outside, "private"))
			os.Symlink(rel, filepath.Join(dir, "common"))
		}},
		{name: "etc out", link: "svc/etc", setup: func(dir, outside string) {
			os.RemoveAll(filepath.Join(dir, "svc/etc"))
			os.Symlink(filepath.Join(outside, "etc"), filepath.Join(dir, "svc/etc"))
		}},
		{name: "conf out", link: "svc/service.conf", setup: func(dir, outside string) {
			os.Symlink(filepath.Join(outside, "shadow"), filepath.Join(dir, "svc", service.ConfigFile))
		}},
		{name: "conf dotdot", link: "svc/service.conf", setup: func(dir, outside string) {
			os.WriteFile(filepath.Join(dir, "shadow"), []byte(secret+"\n"), 0o600)
			os.Symlink("../shadow", filepath.Join(dir, "svc", service.ConfigFile))
		}},
		{name: "service out", link: "svc", setup: func(dir, outside string) {
			os.RemoveAll(filepath.Join(dir, "svc"))
			os.Symlink(outside, filepath.Join(dir, "svc"))
		}},
		// An absolute link is taken as the path it names: the service's
		// directory or common/ inside dir is read, through dir.
		{name: "service and common absolute inside", setup: func(dir, outside string) {
			write(t, dir, map[string]string{"real/etc/rc": "real\n", "shared/basicrc": "PATH=/bin\n"})
			os.RemoveAll(filepath.Join(dir, "svc"))
			os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "svc"))
			os.Symlink(filepath.Join(dir, "shared"), filepath.Join(dir, "common"))
		}, ok: func(t *testing.T, s *service.Service) {
			if b, err := fs.ReadFile(s.FS, "etc/rc"); err != nil || string(b) != "real\n" {
				t.Errorf("etc/rc = %q, %v", b, err)
			}
			if b, err := fs.ReadFile(s.Common, "basicrc"); err != nil || string(b) != "PATH=/bin\n" {
				t.Errorf("common/basicrc = %q, %v", b, err)
			}
		}},
		// svc names away inside; away is the link that leads out.
		{name: "service absolute out through a link inside", link: "away", setup: func(dir, outside string) {
			os.Symlink(outside, filepath.Join(dir, "away"))
			os.RemoveAll(filepath.Join(dir, "svc"))
			os.Symlink(filepath.Join(dir, "away"), filepath.Join(dir, "svc"))
		}},
		{name: "common absolute out", link: "common", setup: func(dir, outside string) {
			os.Symlink(filepath.Join(outside, "private"), filepath.Join(dir, "common"))
		}},
		// Inside the service's directory, reads go through os.Root,
		// which follows relative links only: an absolute one, even to
		// a path inside, is refused saying so, not as leading out.
		{name: "conf absolute inside", link: "svc/service.conf", setup: func(dir, outside string) {
			write(t, dir, map[string]string{"svc/conf/c": "size=7\n"})
			os.Symlink(filepath.Join(dir, "svc/conf/c"), filepath.Join(dir, "svc", service.ConfigFile))
		}, say: "absolute links are refused: make it relative (ln -sfn conf/c "},
		{name: "inside", setup: func(dir, outside string) {
			write(t, dir, map[string]string{
				"shared/basicrc": "PATH=/bin\n", "svc/real-etc/rc": "sh\n", "svc/conf/c": "size=7\n",
			})
			os.Symlink("shared", filepath.Join(dir, "common"))
			os.RemoveAll(filepath.Join(dir, "svc/etc"))
			os.Symlink("real-etc", filepath.Join(dir, "svc/etc"))
			os.Symlink("conf/c", filepath.Join(dir, "svc", service.ConfigFile))
		}, ok: func(t *testing.T, s *service.Service) {
			if b, err := fs.ReadFile(s.Common, "basicrc"); err != nil || string(b) != "PATH=/bin\n" {
				t.Errorf("common/basicrc = %q, %v", b, err)
			}
			if b, err := fs.ReadFile(s.FS, "etc/rc"); err != nil || string(b) != "sh\n" {
				t.Errorf("etc/rc = %q, %v", b, err)
			}
			if s.Config.SizeMB != 7 {
				t.Errorf("config %v: want size 7 from the linked service.conf", s.Config)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			write(t, dir, map[string]string{"svc/etc/rc": "sh\n"})
			write(t, outside, map[string]string{"etc/rc": "sh\n", "etc/shadow": secret + "\n", "shadow": secret + "\n", "private/basicrc": secret + "\n", "private/shadow": secret + "\n"})
			tc.setup(dir, outside)
			s, err := service.Load("svc", dir)
			if tc.ok != nil {
				if err != nil {
					t.Fatal(err)
				}
				tc.ok(t, s)
				return
			}
			link := filepath.Join(dir, tc.link)
			target, _ := os.Readlink(link)
			if err == nil {
				for _, fsys := range []fs.FS{s.FS, s.Common} {
					fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
						if b, _ := fs.ReadFile(fsys, p); strings.Contains(string(b), secret) {
							t.Errorf("%s holds the outside file's bytes", p)
						}
						return nil
					})
				}
				t.Fatalf("Load: nil error, want %s -> %s refused", link, target)
			}
			msg := err.Error()
			say := tc.say
			if say == "" {
				say = "outside"
			}
			if !strings.Contains(msg, link) || !strings.Contains(msg, target) || !strings.Contains(msg, say) {
				t.Errorf("Load: %v, want a refusal naming %s, its target %s and saying %q", err, link, target, say)
			}
			if tc.say != "" && strings.Contains(tc.say, "absolute") && strings.Contains(msg, "outside") {
				t.Errorf("Load: %v says a link to a path inside leads outside", err)
			}
			if strings.Contains(msg, "secret") {
				t.Errorf("Load: %v quotes the outside file", err)
			}
		})
	}
}

// TestLoadCommonOverBuiltin: a service directory's common/ is laid over
// the built-in one, so basicrc, which etc/rc sources, stays beside the
// user's files unless the user brings a basicrc of their own.
func TestLoadCommonOverBuiltin(t *testing.T) {
	builtin, err := service.Load("rescue", "")
	if err != nil {
		t.Fatal(err)
	}
	basicrc, err := fs.ReadFile(builtin.Common, "basicrc")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		common map[string]string
		want   map[string]string // path in Common: content
	}{
		{"own files beside basicrc", map[string]string{"common/functions": "f() { :; }\n", "common/.kshrc": "set -o vi\n", "common/lib/x": "x\n"},
			map[string]string{"basicrc": string(basicrc), "functions": "f() { :; }\n", ".kshrc": "set -o vi\n", "lib/x": "x\n"}},
		{"own basicrc wins", map[string]string{"common/basicrc": "PATH=/bin\n", "common/more": "m\n"},
			map[string]string{"basicrc": "PATH=/bin\n", "more": "m\n"}},
		{"no common", nil, map[string]string{"basicrc": string(basicrc)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, map[string]string{"svc/etc/rc": ". /etc/include/basicrc\nsh\n"})
			write(t, dir, tc.common)
			s, err := service.Load("svc", dir)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			err = fs.WalkDir(s.Common, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := fs.ReadFile(s.Common, p)
				got[p] = string(b)
				return err
			})
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("common files %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

// TestPostinstNames: as smolBSD's glob postinst/*.sh, the scripts are the
// names ending in .sh that do not start with a dot, sorted; any other
// file is listed as ignored (it made the service invalid), except
// dotfiles such as an editor's swap file, which are hidden.
func TestPostinstNames(t *testing.T) {
	for _, tc := range []struct {
		name             string
		files            []string
		scripts, ignored string
	}{
		{"scripts and others", []string{"20-b.sh", "10.sh", "README", "notes.txt", "x.sh.orig", ".10.sh.swp", ".hidden.sh", ".#10.sh"},
			"[postinst/10.sh postinst/20-b.sh]", "[postinst/README postinst/notes.txt postinst/x.sh.orig]"},
		{"only others", []string{"README"}, "[]", "[postinst/README]"},
		{"only dotfiles", []string{".10.sh.swp"}, "[]", "[]"},
		{"none", nil, "[]", "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"svc/etc/rc": "sh\n"}
			for _, f := range tc.files {
				files["svc/postinst/"+f] = "exit 1\n"
			}
			write(t, dir, files)
			s, err := service.Load("svc", dir)
			if err != nil {
				t.Fatal(err)
			}
			scripts, err := s.Postinst()
			if got := fmt.Sprint(scripts); err != nil || got != tc.scripts {
				t.Errorf("Postinst: %s (%v), want %s", got, err, tc.scripts)
			}
			ignored, err := s.IgnoredPostinst()
			if got := fmt.Sprint(ignored); err != nil || got != tc.ignored {
				t.Errorf("IgnoredPostinst: %s (%v), want %s", got, err, tc.ignored)
			}
		})
	}
}

// TestLoadRefusesCRLF: an etc/rc, postinst script or common/basicrc saved
// with CR LF line endings, or with a UTF-8 byte order mark, was accepted,
// and failed in the guest, NetBSD's sh reading ". /etc/include/basicrc\r"
// or "\ufeff. /etc/include/basicrc". Load refuses it, naming the file
// and saying to convert it; a CR elsewhere, and files that are not
// scripts, are left alone. A file is taken as saved with CR LF when its
// first line ends so: a deliberate CR LF further on (a here-document
// writing an HTTP response, a payload after exit) was refused too.
func TestLoadRefusesCRLF(t *testing.T) {
	for _, tc := range []struct {
		files map[string]string
		want  string // in the error; "" for none
	}{
		{map[string]string{"svc/etc/rc": ". /etc/include/basicrc\r\nsh\r\n"},
			"service %s is not valid: etc/rc has CR LF (DOS) line endings (its first line ends in CR LF): sh would take each CR as part of its line; convert it to LF line endings (with dos2unix, say)"},
		{map[string]string{"svc/etc/rc": "sh\n", "svc/postinst/10-a.sh": "set -e\r\ntouch x\r\n"},
			"service %s is not valid: postinst/10-a.sh has CR LF (DOS) line endings (its first line ends in CR LF)"},
		{map[string]string{"svc/etc/rc": "sh\n", "common/basicrc": "echo hi\r\n"},
			"common files in %s: basicrc has CR LF (DOS) line endings (its first line ends in CR LF)"},
		{map[string]string{"svc/etc/rc": "cat > /var/www/reply <<'EOF'\nHTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok\nEOF\nsh\n"}, ""},
		{map[string]string{"svc/etc/rc": "sh\n", "svc/postinst/10-a.sh": "tail -n +4 \"$0\" > payload\nexit 0\n\r\n\x00\x01\r\n"}, ""},
		{map[string]string{"svc/etc/rc": "echo 'a\rb'\nsh\n", "svc/postinst/notes.txt": "x\r\n", "svc/etc/motd": "hi\r\n"}, ""},
		// A UTF-8 byte order mark: sh took it as part of the first
		// command, "\ufeff." is no command, and basicrc was not sourced.
		{map[string]string{"svc/etc/rc": "\ufeff. /etc/include/basicrc\nsh\n"},
			"service %s is not valid: etc/rc begins with a UTF-8 byte order mark (bytes EF BB BF): sh would take it as part of the first command; save it as UTF-8 without a BOM"},
		{map[string]string{"svc/etc/rc": "sh\n", "svc/postinst/10-a.sh": "\ufeffset -e\n"},
			"service %s is not valid: postinst/10-a.sh begins with a UTF-8 byte order mark"},
		{map[string]string{"svc/etc/rc": "sh\n", "common/basicrc": "\ufeffecho hi\n"},
			"common files in %s: basicrc begins with a UTF-8 byte order mark"},
		{map[string]string{"svc/etc/rc": "\ufeffsh\r\n"},
			"service %s is not valid: etc/rc begins with a UTF-8 byte order mark (bytes EF BB BF): sh would take it as part of the first command; save it as UTF-8 without a BOM; etc/rc has CR LF (DOS) line endings"},
		{map[string]string{"svc/etc/rc": "echo \ufeff\nsh\n", "svc/postinst/notes.txt": "\ufeffx\n", "svc/etc/motd": "\ufeffhi\n"}, ""},
	} {
		dir := t.TempDir()
		write(t, dir, tc.files)
		_, err := service.Load("svc", dir)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.files, err)
		case tc.want == "":
		case strings.Contains(tc.want, "common"):
			if want := fmt.Sprintf(tc.want, filepath.Join(dir, "common")); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%v: got %v, want %q", tc.files, err, want)
			}
		default:
			if want := fmt.Sprintf(tc.want, filepath.Join(dir, "svc")); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%v: got %v, want %q", tc.files, err, want)
			}
		}
	}
}

// Package service holds the services smolvmm images boot into: a service is
// a directory with etc/rc (required: what the VM runs at boot; a symlink
// to a file inside the service directory is followed, and the file copied), optional etc/* files
// (copied to /etc; symlinks stay symlinks, read in the guest), optional postinst/*.sh scripts (run at build
// time on a staging copy of the tree) and an optional service.conf naming
// its sets and image size. The shared common/ directory is installed as
// /etc/include. The services rescue and base are embedded in the binary; a
// user's own directory of services can stand beside or replace them.
package service

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed services
var embedded embed.FS

// CommonDir is the directory of shared files, installed as /etc/include.
const CommonDir = "common"

// Service is one loaded and validated service.
type Service struct {
	Name string
	// FS is the service directory (etc/rc, etc/*, postinst/*, service.conf).
	FS fs.FS
	// Common is the shared directory installed as /etc/include.
	Common fs.FS
	// Config is service.conf, or the defaults when the service has none.
	Config Config
	// Embedded tells that the service came from the binary, not a directory.
	Embedded bool
	// Dir is the host directory holding the service's directory (Name),
	// for reads that must stay inside it; "" for an embedded service.
	Dir string
}

// Builtin returns the embedded services directory (one subdirectory per
// service, plus common/).
func Builtin() fs.FS {
	sub, err := fs.Sub(embedded, "services")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// ErrName is matched (errors.Is) by the error for a service name that is
// not a plain directory name.
var ErrName = errors.New("bad service name")

// maxName is the longest service name: a directory's name (NAME_MAX).
const maxName = 255

// CheckName reports, without looking for the service, whether name can
// name one: a plain directory name, not common/, at most 255 bytes. The
// error matches ErrName.
func CheckName(name string) error {
	if len(name) > maxName {
		return nameError(fmt.Sprintf("service name %q... is %d bytes: want a plain directory name of at most %d bytes such as rescue or base", name[:16], len(name), maxName))
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\") || name == CommonDir {
		return nameError(fmt.Sprintf("service name %q: want a plain directory name such as rescue or base", name))
	}
	return nil
}

// nameError is CheckName's error: its text, matching ErrName.
type nameError string

func (e nameError) Error() string        { return string(e) }
func (e nameError) Is(target error) bool { return target == ErrName }

// Load finds service name in dir (a directory holding <name>/ and
// optionally common/) or, when dir is "" or lacks it, among the embedded
// services, and validates it. A dir without common/ uses the embedded one.
func Load(name, dir string) (*Service, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	root, embeddedRoot := Builtin(), true
	if dir != "" {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("service directory: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("service directory %s is not a directory", dir)
		}
		host := os.DirFS(dir)
		if _, err := fs.Stat(host, name); err == nil {
			root, embeddedRoot = host, false
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("service %s in %s: %w", name, dir, err)
		}
	}
	if _, err := fs.Stat(root, name); err != nil {
		known, _ := Names(dir)
		return nil, fmt.Errorf("no service %q (known: %s): create %s/etc/rc or pick one of those", name, strings.Join(known, ", "), path.Join(orEmbedded(dir), name))
	}
	svc, _ := fs.Sub(root, name)
	if !embeddedRoot {
		// Not fs.Sub of the host dir: its Stat opens the file, and the
		// open of a FIFO (an etc/rc Validate stats) blocks; os.DirFS's
		// own Stat does not open.
		svc = os.DirFS(filepath.Join(dir, name))
	}
	common := Builtin()
	if !embeddedRoot {
		if st, err := fs.Stat(root, CommonDir); err == nil && st.IsDir() {
			common = root
		}
	}
	commonFS, _ := fs.Sub(common, CommonDir)
	s := &Service{Name: name, FS: svc, Common: commonFS, Embedded: embeddedRoot}
	where := name
	if !embeddedRoot {
		where = path.Join(dir, name)
		s.Dir = dir
	}
	if err := Validate(svc, where); err != nil {
		return nil, err
	}
	cfg, err := ReadConfig(svc, where)
	if err != nil {
		return nil, err
	}
	s.Config = cfg
	return s, nil
}

func orEmbedded(dir string) string {
	if dir == "" {
		return "<service-dir>"
	}
	return dir
}

// Names lists the services available in dir and among the embedded ones.
func Names(dir string) ([]string, error) {
	seen := map[string]bool{}
	add := func(fsys fs.FS) error {
		es, err := fs.ReadDir(fsys, ".")
		if err != nil {
			return err
		}
		for _, e := range es {
			if e.IsDir() && e.Name() != CommonDir {
				seen[e.Name()] = true
			}
		}
		return nil
	}
	if err := add(Builtin()); err != nil {
		return nil, err
	}
	if dir != "" {
		if err := add(os.DirFS(dir)); err != nil {
			return nil, fmt.Errorf("listing services in %s: %w", dir, err)
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Validate checks that fsys is a usable service: etc/rc is a non-empty
// regular file or a symlink to one (the image builder follows it, only
// within the service directory, and writes the file it points to: /etc/rc
// is always a file in the image),
// etc/ is a directory, and postinst/ holds only *.sh files. Other symlinks
// of a service go into the image as symlinks, their targets read as guest
// paths. where names the service in messages.
func Validate(fsys fs.FS, where string) error {
	var problems []string
	st, err := fs.Stat(fsys, "etc/rc")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		problems = append(problems, "etc/rc is missing: it is the script the VM runs at boot (e.g. \". /etc/include/basicrc; sh\")")
	case err != nil:
		problems = append(problems, fmt.Sprintf("etc/rc: %v", err))
	case !st.Mode().IsRegular():
		problems = append(problems, "etc/rc is not a regular file")
	case st.Size() == 0:
		problems = append(problems, "etc/rc is empty")
	}
	if es, err := fs.ReadDir(fsys, "postinst"); err == nil {
		for _, e := range es {
			if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".sh") {
				problems = append(problems, fmt.Sprintf("postinst/%s: postinst/ may hold only *.sh script files", e.Name()))
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		problems = append(problems, fmt.Sprintf("postinst: %v", err))
	}
	if len(problems) > 0 {
		// One line, as every error is printed.
		return fmt.Errorf("service %s is not valid: %s", where, strings.Join(problems, "; "))
	}
	return nil
}

// Postinst returns the names of the service's postinst scripts
// (postinst/*.sh), sorted: they run in that order.
func (s *Service) Postinst() ([]string, error) {
	es, err := fs.ReadDir(s.FS, "postinst")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("service %s: postinst: %w", s.Name, err)
	}
	var names []string
	for _, e := range es {
		names = append(names, path.Join("postinst", e.Name()))
	}
	return names, nil
}

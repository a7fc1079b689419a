package service

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/internal/plainname"
	"github.com/smolvmm/smolvmm/internal/setname"
)

// ConfigFile is the name of a service's optional settings file.
const ConfigFile = "service.conf"

// Config is what service.conf says: which sets the image is built from and
// how large it is. Lines are key=value; "#" starts a comment.
//
//	sets=rescue        # comma-separated set names, without extension
//	size=10            # image size in MiB, or "auto"
type Config struct {
	// Sets are set names (rescue, base, etc...), each once (rescue and
	// rescue.tgz are one set); the caller finds <name>.tgz or
	// <name>.tar.xz for a name without an extension.
	Sets []string
	// SizeMB is the image size in MiB; 0 means auto (content plus headroom).
	SizeMB int
}

// DefaultConfig is used for a service without service.conf: the rescue set
// in a 10 MiB image, as the predecessor's mkimg.sh did.
var DefaultConfig = Config{Sets: []string{"rescue"}, SizeMB: 10}

// defaults returns DefaultConfig with a Sets slice of its own, so that a
// caller changing it leaves DefaultConfig as it is.
func defaults() Config {
	return Config{Sets: slices.Clone(DefaultConfig.Sets), SizeMB: DefaultConfig.SizeMB}
}

// OptionsFile is smolBSD's per-service make settings (IMGSIZE=,
// ADDSETS=), which this builder does not read: see Service.Warnings.
const OptionsFile = "options.mk"

// Warnings returns what a build of s should say of the service's files it
// does not use: one line for an options.mk, which smolBSD's make reads and
// this builder does not (a Makefile fragment, whose ?=, += and variables
// mean what make makes of them), naming the service.conf keys to set
// instead. Without service.conf, the build takes DefaultConfig, or the
// size and sets it is given otherwise, never options.mk's: the warning
// does not name them, as only the build knows which.
func (s *Service) Warnings() []string {
	if _, err := fs.Stat(s.FS, OptionsFile); err != nil {
		return nil
	}
	from := "this build uses " + ConfigFile
	if _, err := fs.Stat(s.FS, ConfigFile); errors.Is(err, fs.ErrNotExist) {
		from = fmt.Sprintf("there is no %s, and %s's size and sets do not apply", ConfigFile, OptionsFile)
	}
	return []string{fmt.Sprintf("service %s: %s is not read (smolBSD's make settings): %s; put its settings in %s instead: size=MiB for IMGSIZE, sets=rescue,base,... for the sets (ADDSETS included)",
		s.Name, OptionsFile, from, ConfigFile)}
}

// ReadConfig reads service.conf from a service directory, returning
// DefaultConfig when there is none. where names the service in messages.
func ReadConfig(fsys fs.FS, where string) (Config, error) {
	// Checked first: reading a FIFO would block. (A host service's FS is
	// an os.Root's, whose Stat does not open the file.)
	switch st, err := fs.Stat(fsys, ConfigFile); {
	case errors.Is(err, fs.ErrNotExist):
		return defaults(), nil
	case err != nil:
		return Config{}, fmt.Errorf("service %s: %w", where, linkCause(fsys, where, ConfigFile, err))
	case !st.Mode().IsRegular():
		return Config{}, fmt.Errorf("service %s: %s is %s, not a regular file: %s must be a regular file of key=value settings (sets=, size=), or absent", where, filepath.Join(where, ConfigFile), filekind.Of(st.Mode()), ConfigFile)
	}
	b, err := fs.ReadFile(fsys, ConfigFile)
	if errors.Is(err, fs.ErrNotExist) {
		return defaults(), nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("service %s: %w", where, err)
	}
	return ParseConfig(string(b), where+"/"+ConfigFile)
}

// ParseConfig parses the text of a service.conf; name is used in messages.
// A line may be of any length: the text is in memory already (a
// bufio.Scanner refused one over 64 KiB, naming no file or line). A
// UTF-8 byte order mark at its start, which some editors write, is
// skipped: it was taken as part of the first key ("\ufeffsets").
func ParseConfig(text, name string) (Config, error) {
	text = strings.TrimPrefix(text, utf8BOM)
	cfg := defaults()
	seen := map[string]int{} // the line of each key given
	for n, l := range strings.Split(text, "\n") {
		line := n + 1
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			// Not quoted: the file may be one the user cannot read
			// (a build by root), and the line a secret.
			return Config{}, fmt.Errorf("%s:%d: the line is not key=value (known keys: sets, size)", name, line)
		}
		if k == "sets" || k == "size" {
			// The last one was taken without a word.
			if first, ok := seen[k]; ok {
				return Config{}, fmt.Errorf("%s:%d: %s given again (first on line %d): give each key once", name, line, k, first)
			}
			seen[k] = line
		}
		switch k {
		case "sets":
			cfg.Sets = nil
			// The set's name without its archive's extension -> the
			// name given: rescue and rescue.tgz are one set, which the
			// fetcher takes as one file and the builder would read
			// twice. Any reader's extensions count (.tar is mkimg's).
			named := map[string]string{}
			for _, s := range strings.Split(v, ",") {
				s = strings.TrimSpace(s)
				if err := checkSetName(s); err != nil {
					return Config{}, fmt.Errorf("%s:%d: set name %q: %w", name, line, s, err)
				}
				// Read twice into the image, and named twice in advice
				// (smolvmm fetch base etc base).
				base := setname.Any.Base(s)
				switch first, ok := named[base]; {
				case ok && first == s:
					return Config{}, fmt.Errorf("%s:%d: set %q named twice: name each set once", name, line, s)
				case ok:
					return Config{}, fmt.Errorf("%s:%d: set %q named twice (%q, then %q): name each set once", name, line, base, first, s)
				}
				named[base] = s
				cfg.Sets = append(cfg.Sets, s)
			}
		case "size":
			if v == "auto" {
				cfg.SizeMB = 0
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 1<<20 {
				return Config{}, fmt.Errorf("%s:%d: size %q: want a number of MiB (1 to 1048576) or auto", name, line, v)
			}
			cfg.SizeMB = n
		default:
			return Config{}, fmt.Errorf("%s:%d: unknown key %q (known: sets, size)", name, line, k)
		}
	}
	return cfg, nil
}

// checkSetName refuses a set name the fetcher would refuse (the check is
// plainname's, shared with it), and more: one starting with "." (a name
// is also looked up as a directory NAME, and "." or ".." would be the
// directory searched; a dotfile is no set), and quotes or white space,
// which service.conf does not strip: sets="rescue" or sets=rescue base
// named sets no mirror has.
func checkSetName(s string) error {
	switch {
	case strings.ContainsFunc(s, func(r rune) bool { return r == '"' || r == '\'' || unicode.IsSpace(r) }):
		return errors.New("want names like rescue,base: unquoted, separated by commas, without spaces")
	case len(s) > plainname.MaxLen:
		return fmt.Errorf("want a name of at most %d bytes, such as rescue", plainname.MaxLen)
	case !plainname.Plain(s) || strings.HasPrefix(s, "."):
		return errors.New(`want names like rescue,base (no / or \, ?, # or %, not starting with ".")`)
	}
	return nil
}

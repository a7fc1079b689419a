package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/ext2"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/internal/setname"
	"github.com/smolvmm/smolvmm/service"
)

// mkimgDefaults are the predecessor's mkimg.sh defaults.
const (
	mkimgDefaultImage = "root.img"
	mkimgDefaultData  = "data.img"
)

func mkimgCommand() *cli.Command {
	return &cli.Command{
		Name:      "mkimg",
		Usage:     "build a NetBSD root image (ext2) from sets and a service, or a data disk from a directory",
		ArgsUsage: " ",
		Description: `Reads the sets (.tgz, .tar.xz or directories) into memory, lays the service over
them (its etc/ over /etc, common/ as /etc/include, /etc/fstab, /dev nodes),
runs its postinst scripts on a staging copy (as a user id of the build's own
when run as root), and writes an ext2 image that NetBSD 9 mounts read-write.
No root needed.

Without -m and -x, the service's service.conf decides the size and sets
(rescue: auto, rescue.tgz; a service without one gets 10 MiB and
rescue.tgz, as mkimg.sh did); a set name resolves to
NAME.tgz or NAME.tar.xz in the current directory, then in sets/, then in
the cache where smolvmm fetch keeps the default release (re-verified
against its SHA512; root refuses one that is another user's, as fetch
does); only with none of these to the directory NAME in the
current directory, then in sets/. -x takes paths, not set names: for a
path that does not exist, such as -x base, the error names the archive
that set name resolves to.

With --data DIR, builds a FAT32 (or ISO 9660) disk holding DIR instead.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "service", Aliases: []string{"s"}, Value: "rescue", Usage: "service `NAME` (embedded: rescue, base; or one in --service-dir)"},
			&cli.StringFlag{Name: "megabytes", Aliases: []string{"m"}, Usage: "image size in `MiB`, or auto (content plus headroom); a FAT32 --data image is at least " + strconv.Itoa(imagebuilder.MinFAT32MiB) + " MiB and at most " + strconv.Itoa(imagebuilder.MaxFAT32MiB) + " MiB [default: service.conf's, auto for rescue, 10 without one; with --data, auto]"},
			&cli.StringFlag{Name: "image", Aliases: []string{"i"}, Usage: "output `FILE` [default: root.img, data.img with --data]"},
			&cli.StringSliceFlag{Name: "sets", Aliases: []string{"x"}, Usage: "set `FILE`s or directories, comma-separated or repeated [default: service.conf's, rescue.tgz]"},
			&cli.StringFlag{Name: "service-dir", Usage: "`DIR` holding your own services (<name>/etc/rc, optional common/)"},
			&cli.StringFlag{Name: "arch", Usage: "NetBSD port (`ARCH`) the sets are for, which decides the /dev numbers: " + imagebuilder.ArchI386 + " or " + imagebuilder.ArchAMD64 + " [default: the port of the sets' init program; " + imagebuilder.DefaultArch + " when it is no ELF program]"},
			&cli.StringFlag{Name: "timestamp", Usage: "`T` for the superblock and files without a time (with --data, for the disk's root directory and volume; its files keep their own): Unix seconds or RFC 3339 [default: $SOURCE_DATE_EPOCH, else now]"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "overwrite an existing image (a regular file; through a symlink, its target)"},
			&cli.StringFlag{Name: "data", Usage: "build a data disk holding host `DIR` instead of a root image"},
			&cli.StringFlag{Name: "fs", Value: imagebuilder.DataFAT32, Usage: "data disk file `SYSTEM`: fat32 or iso9660 (with --data)"},
		},
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, 0, ""); err != nil {
				return err
			}
			// A signal stops the build, which checks ctx within each
			// file's copy (--data), within the read of a set, while a
			// postinst script runs (killing it, with what it started),
			// between the blocks of the image it writes and right before
			// the rename that replaces the output, and removes its
			// temporary files (status 130), as for fetch and up.
			ctx, stop := signalContext(c.Context) // fetch.go
			defer stop()
			if err := mkimg(ctx, c, os.Stderr); err != nil {
				return interrupted(ctx, err)
			}
			return nil
		},
	}
}

// mkimgFlags is the subset of flags mkimg reads, so tests can fill it.
type mkimgFlags interface {
	String(name string) string
	StringSlice(name string) []string
	Bool(name string) bool
	IsSet(name string) bool
}

func mkimg(ctx context.Context, c mkimgFlags, log io.Writer) error {
	sizeMB, auto, err := parseMegabytes(c.String("megabytes"))
	if err != nil {
		return usageErrorf("%v", err)
	}
	if fs := c.String("fs"); fs != imagebuilder.DataFAT32 && fs != imagebuilder.DataISO9660 {
		return usageErrorf("--fs %q: want %s or %s", fs, imagebuilder.DataFAT32, imagebuilder.DataISO9660)
	}
	// Flags of the other kind of image would be silently ignored.
	if c.String("data") != "" {
		for _, f := range []struct{ name, shown string }{
			{"service", "-s"}, {"sets", "-x"}, {"service-dir", "--service-dir"}, {"arch", "--arch"},
		} {
			if c.IsSet(f.name) {
				return usageErrorf("%s is for root images; a --data disk holds only its directory (drop %s, or drop --data)", f.shown, f.shown)
			}
		}
		if c.String("fs") == imagebuilder.DataISO9660 && c.IsSet("megabytes") && !auto {
			return usageErrorf("-m %s: an ISO 9660 image is as large as its content (drop -m, or use --fs %s)", c.String("megabytes"), imagebuilder.DataFAT32)
		}
		// Known from the flags alone, before the directory is read.
		if c.String("fs") == imagebuilder.DataFAT32 && c.IsSet("megabytes") && !auto && sizeMB < imagebuilder.MinFAT32MiB {
			return usageErrorf("-m %d: a FAT32 data image is at least %d MiB (give -m %d or more, or -m auto)", sizeMB, imagebuilder.MinFAT32MiB, imagebuilder.MinFAT32MiB)
		}
		// -m's own range is every image's; FAT32's ends lower.
		if c.String("fs") == imagebuilder.DataFAT32 && c.IsSet("megabytes") && !auto && sizeMB > imagebuilder.MaxFAT32MiB {
			return usageErrorf("-m %d: a FAT32 data image is at most %d MiB (give -m %d or less, or -m auto)", sizeMB, imagebuilder.MaxFAT32MiB, imagebuilder.MaxFAT32MiB)
		}
	} else if c.IsSet("fs") {
		return usageErrorf("--fs is for data disks: use it with --data DIR (a root image is always ext2)")
	}
	if dir := c.String("data"); dir != "" {
		out := c.String("image")
		if out == "" {
			out = mkimgDefaultData
		}
		if err := checkOutput(out, c.Bool("force")); err != nil {
			return err
		}
		if err := checkInputDir("--data", dir, dir, "the directory the disk is to hold"); err != nil { // filemsgs.go
			return err
		}
		if err := checkImageNotInput(out, []buildInput{{dir, "the directory given with --data, which the disk holds"}}); err != nil { // checks.go
			return err
		}
		if !c.IsSet("megabytes") || auto {
			sizeMB = 0
		}
		// The disk's files keep their own times; T dates its root and
		// volume, so that the same directory gives the same image.
		var vol time.Time
		switch n, set, err := timestampArg(c.String("timestamp")); {
		case err != nil && c.String("timestamp") != "":
			return usageErrorf("%v", err)
		case err != nil:
			return err
		case set:
			vol = time.Unix(n, 0)
		}
		start := time.Now()
		opts := imagebuilder.DataOptions{Force: c.Bool("force"), Replace: forceCheck(out, c.Bool("force")), Time: vol}
		if err := imagebuilder.BuildDataImageOptions(ctx, dir, out, c.String("fs"), sizeMB, opts); err != nil {
			var small *imagebuilder.DataSizeError
			if errors.As(err, &small) {
				return &fileError{fmt.Sprintf("%v (give -m %d or more, or -m auto)", err, small.NeedMiB), err}
			}
			return commitAdvice(err, out)
		}
		fmt.Fprintf(log, "smolvmm mkimg: wrote %s (%s of %s) in %.2fs%s\n", out, c.String("fs"), dir, time.Since(start).Seconds(), lateSignal(ctx))
		return nil
	}
	// A -x that names nothing ("," or ",,") is a slip on the command
	// line: it built the service's sets, as if -x had been left out.
	if c.IsSet("sets") && len(splitCommas(c.StringSlice("sets"))) == 0 {
		return usageErrorf("-x %q names no set: give set files or directories, e.g. -x rescue.tgz, or leave out -x to take the service's sets", strings.Join(c.StringSlice("sets"), ","))
	}
	if err := service.CheckName(c.String("service")); err != nil {
		return usageErrorf("-s: %v", err)
	}
	arch := c.String("arch")
	if err := imagebuilder.CheckArch(arch); err != nil {
		return archError(err)
	}
	ts, err := parseTimestamp(c.String("timestamp"))
	if err != nil && c.String("timestamp") != "" {
		return usageErrorf("%v", err) // a bad --timestamp; a bad SOURCE_DATE_EPOCH is not the command line's
	}
	if err != nil {
		return err
	}
	out := c.String("image")
	if out == "" {
		out = mkimgDefaultImage
	}
	if err := checkOutput(out, c.Bool("force")); err != nil {
		return err
	}
	if dir := c.String("service-dir"); dir != "" {
		if err := checkInputDir("--service-dir", dir, dir, serviceDirWant); err != nil { // filemsgs.go
			return err
		}
	}
	if err := checkImageOutsideService(out, c.String("service-dir"), c.String("service")); err != nil { // checks.go
		return err
	}
	svc, err := service.Load(c.String("service"), c.String("service-dir"))
	if err != nil {
		return err
	}
	if !c.IsSet("megabytes") {
		sizeMB = svc.Config.SizeMB
	} else if auto {
		sizeMB = 0
	}
	sets, err := resolveSets(c.StringSlice("sets"), svc.Config.Sets, arch)
	if err != nil {
		return err
	}
	inputs := make([]buildInput, len(sets))
	for i, p := range sets {
		inputs[i] = buildInput{p, "a set of service " + svc.Name}
		if c.IsSet("sets") {
			inputs[i].what = "a set given with -x"
		}
	}
	if err := checkImageNotInput(out, inputs); err != nil { // checks.go
		return err
	}
	cfg := imagebuilder.Config{Sets: sets, Service: svc, Arch: arch, SizeMB: sizeMB, FixedSize: true, Timestamp: ts, TimestampSet: true, Force: c.Bool("force"),
		Replace: forceCheck(out, c.Bool("force")), Log: newBuildLog(log, "mkimg")}
	start := time.Now()
	reading := progress(log, "reading sets")
	cfg.ReadProgress = reading.update
	tree, err := imagebuilder.BuildTree(ctx, &cfg)
	reading.done()
	if err != nil {
		// The sets' data, held in memory, is checked against the
		// image's size as they are read.
		if errors.Is(err, imagebuilder.ErrTooMuchData) {
			return &fileError{fmt.Sprintf("%v (give -m with a size in MiB to build an image that holds more)", err), err}
		}
		return initArchAdvice(tooSmallAdvice(err, c, svc), arch)
	}
	port := ""
	if arch == "" && cfg.Arch != "" {
		port = " (" + cfg.Arch + ", the port of their init)"
	}
	fmt.Fprintf(log, "smolvmm mkimg: read %s%s and service %s in %.2fs\n", showSets(sets), port, svc.Name, time.Since(start).Seconds())
	finish := progress(log, "writing "+out)
	cfg.Progress = finish.update
	err = imagebuilder.WriteImageContext(ctx, tree, cfg, out)
	finish.done()
	if err != nil {
		return commitAdvice(tooSmallAdvice(err, c, svc), out)
	}
	st, _ := os.Stat(out)
	fmt.Fprintf(log, "smolvmm mkimg: wrote %s (%d MiB) in %.2fs%s\n", out, st.Size()>>20, time.Since(start).Seconds(), lateSignal(ctx))
	return nil
}

// lateSignal is what the line of an image written says of a signal that
// came once the image was renamed into place, too late to stop it (the
// writer looks for one right before the rename): the status stays 0, and
// the line says the image is the new one, not the old one a stop keeps.
func lateSignal(ctx context.Context) string {
	if ctx.Err() == nil {
		return ""
	}
	var sc signalCause
	if errors.As(context.Cause(ctx), &sc) {
		return "; " + signalName(sc.sig) + " came after it was written, too late to stop it: the new image is kept"
	}
	return "; stopped after it was written, too late: the new image is kept"
}

// tooSmallAdvice adds to a root image's "too small" what to give, and
// where the size came from: -m, the service's service.conf, or the size
// of a service without one.
func tooSmallAdvice(err error, c mkimgFlags, svc *service.Service) error {
	var small *ext2.TooSmallError
	if !errors.As(err, &small) {
		return err
	}
	need := small.Needed >> 20
	give := fmt.Sprintf("give -m %d or more, or -m auto", need)
	var early *fstree.LimitError
	if errors.As(err, &early) {
		// The sets were read no further: what they need is more. Their
		// data read by then, at least Needed, is past what -m auto
		// reads once Needed is.
		give = fmt.Sprintf("give -m auto, or a larger -m: the sets were read only until their data passed the image's size, so they need %d MiB or more", need)
		if small.Needed > imagebuilder.MaxAutoData {
			give = fmt.Sprintf("give a larger -m: the sets were read only until their data passed the image's size, so they need %d MiB or more, past the %d MiB -m auto reads", need, imagebuilder.MaxAutoData>>20)
		}
	}
	conf := filepath.Join(svc.Dir, svc.Name, service.ConfigFile)
	var from string
	switch _, statErr := fs.Stat(svc.FS, service.ConfigFile); {
	case c.IsSet("megabytes"):
		from = "the size is -m " + c.String("megabytes")
	case svc.Embedded:
		from = fmt.Sprintf("the size is %d MiB, the built-in service %s's", svc.Config.SizeMB, svc.Name)
	case statErr == nil:
		from = fmt.Sprintf("the size is size=%d in %s", svc.Config.SizeMB, conf)
		give += ", or raise size= there"
	default:
		from = fmt.Sprintf("%d MiB is the size of a service without %s", svc.Config.SizeMB, service.ConfigFile)
		give += fmt.Sprintf(", or write size=auto in %s", conf)
	}
	return &fileError{fmt.Sprintf("%v (%s: %s)", err, from, give), err}
}

// showSets lists the paths of the sets read, a directory with a trailing
// slash: "read rescue" did not tell the directory rescue/ (a service
// directory, say) from the set rescue.tgz.
func showSets(sets []string) string {
	shown := make([]string, len(sets))
	for i, s := range sets {
		shown[i] = s
		if st, err := os.Stat(s); err == nil && st.IsDir() && !strings.HasSuffix(s, string(filepath.Separator)) {
			shown[i] += string(filepath.Separator)
		}
	}
	return strings.Join(shown, ", ")
}

// initArchAdvice adds to imagebuilder's refusal of sets whose init is
// for another port than --arch (arch, "" when not given) what to do.
func initArchAdvice(err error, arch string) error {
	var ae *imagebuilder.InitArchError
	switch {
	case !errors.As(err, &ae):
		return err
	case ae.Port == "":
		return &fileError{fmt.Sprintf("%v: give sets for %s or %s", err, imagebuilder.ArchI386, imagebuilder.ArchAMD64), err}
	}
	return &fileError{fmt.Sprintf("--arch %s: %v: drop --arch to build the image for %s, or give sets for %s", arch, err, ae.Port, arch), err}
}

// checkOutput refuses, before any set is read, an image path that exists
// (unless force), that is not a regular file (a device or FIFO is never
// replaced, -f or not), or whose directory does not exist.
func checkOutput(out string, force bool) error {
	target, err := checkImageOutput(out)
	if err != nil {
		return err
	}
	if err := checkWritable("image "+out, out); err != nil {
		return err
	}
	if _, err := os.Stat(target); err == nil && !force {
		return fmt.Errorf("image %s already exists: remove it or pass -f to overwrite it", out)
	} else if err == nil {
		// -f replaces the file; a VM using it would write on to the old
		// one. Said here before any work, and checked again at the
		// rename (forceCheck).
		if err := checkNotInUse(target); err != nil {
			return err
		}
		if err := checkWriteProtected("image", out, target, "-f", "give -i another file"); err != nil {
			return err
		}
	}
	return nil
}

// commitAdvice is err, when the image built was not put in place at out,
// in mkimg's words: without -f, because a file appeared there while it
// was written; with -f, because forceCheck refused the file there.
func commitAdvice(err error, out string) error {
	var refused forceRefusal
	switch {
	case errors.As(err, &refused):
		return refused // its text names the image: the builder's "image X: " would say it twice
	case errors.Is(err, imagebuilder.ErrExists):
		return &fileError{fmt.Sprintf("image %s appeared while mkimg wrote it: it is left as it is and the new image discarded; remove it and run mkimg again, or pass -f to overwrite it", out), err}
	}
	return err
}

// forceRefusal is forceCheck's refusal of the file at the image's path.
type forceRefusal struct{ error }

func (e forceRefusal) Unwrap() error { return e.error }

// forceCheck is -f's check, right before the rename, of the file then at
// the image's path out, nil without -f: checkOutput's, made before the
// build, is made again, as a VM may start on the image (or one be put
// there) during a build of seconds or minutes, and would then write on to
// the unlinked old file. The lock taken to see that no VM uses it is held
// until the new image is in place, so none starts on the old one.
func forceCheck(out string, force bool) func(old *os.File) error {
	if !force {
		return nil
	}
	return func(old *os.File) error {
		// old is the file at the path the writer resolved: through a
		// symlink, its target, as checkOutput judged.
		if err := checkWriteProtected("image", out, old.Name(), "-f", "give -i another file"); err != nil {
			return forceRefusal{fmt.Errorf("%w; it is left as it is and the image mkimg built discarded", err)}
		}
		if err := lockImage(old, out); err != nil { // up.go
			return forceRefusal{fmt.Errorf("%w; it is left as it is and the image mkimg built discarded", err)}
		}
		return nil
	}
}

// parseMegabytes reads -m: a positive number of MiB, or "auto".
func parseMegabytes(s string) (mb int, auto bool, err error) {
	switch s {
	case "":
		return 0, false, nil
	case "auto":
		return 0, true, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 1<<20 {
		return 0, false, fmt.Errorf("-m %q: want a size in MiB (1 to 1048576) or auto", s)
	}
	return n, false, nil
}

// parseTimestamp reads --timestamp (Unix seconds or RFC 3339), falling
// back to $SOURCE_DATE_EPOCH and then to now.
func parseTimestamp(s string) (int64, error) {
	n, set, err := timestampArg(s)
	switch {
	case err != nil:
		return 0, err
	case !set:
		return time.Now().Unix(), nil
	}
	src := "--timestamp"
	if s == "" {
		s, src = os.Getenv("SOURCE_DATE_EPOCH"), "SOURCE_DATE_EPOCH"
	}
	// Said with the value as given: an RFC 3339 time was echoed as the
	// seconds it makes (--timestamp 32503680000 for 3000-01-01T00:00:00Z).
	if n < 0 || n > 1<<31-1 {
		return 0, fmt.Errorf("%s %s: ext2 stores times from 1970-01-01T00:00:00Z to 2038-01-19T03:14:07Z (Unix seconds 0 to 2147483647)", src, s)
	}
	return n, nil
}

// timestampArg reads --timestamp s (Unix seconds or RFC 3339), or else
// $SOURCE_DATE_EPOCH; set is false when neither is given. A data disk
// takes any time: its file system keeps what it can of it (FAT32 1980 to
// 2107, ISO 9660 1900 to 2155).
func timestampArg(s string) (n int64, set bool, err error) {
	src := "--timestamp"
	if s == "" {
		s, src = os.Getenv("SOURCE_DATE_EPOCH"), "SOURCE_DATE_EPOCH"
	}
	if s == "" {
		return 0, false, nil
	}
	n, err = strconv.ParseInt(s, 10, 64)
	if err != nil {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return 0, false, fmt.Errorf("%s %q: want Unix seconds or an RFC 3339 time like 2024-01-02T15:04:05Z", src, s)
		}
		n = t.Unix()
	}
	return n, true, nil
}

// resolveSets returns the -x paths (split on commas), or, when none are
// given, the service's set names resolved by findSet for port arch.
func resolveSets(flags, names []string, arch string) ([]string, error) {
	out := splitCommas(flags)
	for i, p := range out {
		if err := checkSetPath(p); err != nil {
			if named := setNameAdvice(err, p, arch); named != nil {
				return nil, named
			}
			return nil, commaAdvice(err, out, i)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	var missing []*missingSetError
	for _, n := range names {
		p, err := findSet(n, arch)
		var m *missingSetError
		if errors.As(err, &m) {
			missing = append(missing, m) // each named, and fetched at once
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(missing) > 0 {
		return nil, missingSets(missing)
	}
	return out, nil
}

// setNameAdvice is err, the refusal of a missing -x path p, with the
// archive a set named p is (findSet, as sets= in service.conf is
// resolved) when p could be a set's name and there is one; nil otherwise.
// -x stays a list of paths: were a missing one looked up as a name, a
// mistyped path could build from an archive found elsewhere.
func setNameAdvice(err error, p, arch string) error {
	if !errors.Is(err, fs.ErrNotExist) || strings.ContainsAny(p, "/\\") || strings.HasPrefix(p, ".") {
		return nil
	}
	found, ferr := findSet(p, arch)
	if ferr != nil {
		return nil
	}
	return &fileError{fmt.Sprintf("%v; -x takes paths, and the set named %s is %s: give -x %s", err, p, found, found), err}
}

// commaAdvice is err, the refusal of -x path parts[i], with what a comma
// in a path does when parts[i] does not exist and -x gave more than one
// path: -x splits at commas (urfave/cli splits every slice flag, and the
// switch that stops it is the whole program's, which --module FILE,kmod
// and -x a.tgz,b.tgz rely on), so a path with one in it is never read.
func commaAdvice(err error, parts []string, i int) error {
	if !errors.Is(err, fs.ErrNotExist) || len(parts) < 2 {
		return err
	}
	for lo := 0; lo <= i; lo++ {
		for hi := max(i, lo+1); hi < len(parts); hi++ {
			joined := strings.Join(parts[lo:hi+1], ",")
			if _, serr := os.Lstat(joined); serr == nil {
				return &fileError{fmt.Sprintf("-x %s: no such file or directory: -x splits its value at commas, so %s, which exists, was read as %d paths; rename it, or give -x a symlink to it whose path has no comma", parts[i], joined, hi-lo+1), err}
			}
		}
	}
	return &fileError{err.Error() + "; -x splits its value at commas: a path with a comma in it must be renamed, or given as a symlink whose path has none", err}
}

// findSet finds the file of a set named without a path: an archive,
// NAME.tgz or NAME.tar.xz, in the current directory, then in sets/ (where
// mkimg.sh kept them), then among the files smolvmm fetch verified into
// its cache for the default version of port arch; only with no archive in
// any of these, a directory NAME in the current directory or in sets/.
// Archives come first everywhere: a directory NAME beside sets/NAME.tgz is
// more likely something else of the user's (their service directory
// rescue/, with --service-dir .) than the set. A name that ends in any
// set archive's extension (sets=rescue.tgz, or a mirror's rescue.tbz) is
// that archive, as the cache (fetch.Digests.SetFile) and service.conf's
// check of a set named twice take it: NAME.tgz.tgz is not looked for. Its
// content, not its name, says whether the builder reads it. A cache root
// may not use (another user's) is passed over as one without the set:
// the refusal is said only when the set is found nowhere else, in the
// *missingSetError, where it is the reason the cache was not looked in.
func findSet(name, arch string) (string, error) {
	stat := func(p string, dir bool) (bool, error) {
		st, err := os.Stat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("set %s: %w", p, err)
		}
		return !dir || st.IsDir(), nil
	}
	places := []string{"", "sets"}
	archives := []string{name + ".tgz", name + ".tar.xz"}
	if _, ok := setname.Any.Cut(name); ok {
		archives = []string{name}
	}
	for _, dir := range places {
		for _, a := range archives {
			p := filepath.Join(dir, a)
			if ok, err := stat(p, false); ok || err != nil {
				return p, err
			}
		}
	}
	p, cache, err := cachedSet(name, arch)
	var refused *cachedSetError
	if errors.As(err, &refused) {
		err = nil
	}
	if p != "" || err != nil {
		return p, err
	}
	for _, dir := range places {
		p := filepath.Join(dir, name)
		if ok, err := stat(p, true); ok || err != nil {
			return p, err
		}
	}
	m := &missingSetError{name: name, archives: archives, cache: cache, arch: arch, refused: refused}
	// Named with an extension that is not the archive there is
	// (sets=etc.tar.xz, the release's etc.tgz): a fetch would not help,
	// the name would.
	if base := fetchName(name); base != name {
		if p, err := findSet(base, arch); err == nil {
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				m.found = p
			}
		} else if f := releaseSetFile(base, arch); f != "" && f != name {
			m.release = f
		}
	}
	return "", m
}

// missingSetError is findSet's error for a set found nowhere.
type missingSetError struct {
	name     string
	archives []string // the files looked for
	cache    string
	arch     string
	// For a name with an extension: the archive its name without it
	// finds, else the file the default release's SHA512 (when cached)
	// lists for it, when that is another name.
	found, release string
	// refused is why the cache was not looked in (root and another
	// user's cache), nil when it was.
	refused *cachedSetError
}

func (e *missingSetError) Error() string {
	if e.refused != nil {
		// No fetch advice: fetch refuses that cache too.
		msg := fmt.Sprintf("set %q: no %s in the current directory or in sets/, and no directory %s in the current directory or in sets/; ",
			e.name, strings.Join(e.archives, " or "), e.name)
		if r := e.rename(); r != "" {
			msg += r + "; "
		}
		return msg + "the fetch cache is not looked in: " + e.refused.err.Error()
	}
	msg := fmt.Sprintf("set %q: no %s in the current directory, in sets/ or in %s, and no directory %s in the current directory or in sets/: ",
		e.name, strings.Join(e.archives, " or "), e.cache, e.name)
	switch {
	case e.found != "":
		return msg + e.rename() + ", or pass -x PATH"
	case e.release != "", unreadable(e.name):
		return msg + fmt.Sprintf("%s and fetch it (smolvmm fetch %s), or pass -x PATH", e.rename(), fetchSetArgs(e.arch, fetchName(e.name)))
	}
	return msg + fmt.Sprintf("pass -x PATH, or fetch the set first (smolvmm fetch %s)", fetchSetArgs(e.arch, fetchName(e.name)))
}

// Unwrap is the cache's refusal, for its advice (foreignCacheAdvice);
// nil when the cache was looked in.
func (e *missingSetError) Unwrap() error {
	if e.refused == nil {
		return nil
	}
	return e.refused
}

// rename is the advice for a set named with another extension than its
// archive's (found or release set), or with one the builder does not
// read; "" for any other.
func (e *missingSetError) rename() string {
	base := fetchName(e.name)
	switch {
	case e.found != "":
		return fmt.Sprintf("sets=%s would read %s: name the set %s", base, e.found, base)
	case e.release != "":
		return fmt.Sprintf("the default release (NetBSD %s) has %s, not %s: name the set %s (sets=%s)", fetch.DefaultVersion, e.release, e.name, base, base)
	case unreadable(e.name):
		return fmt.Sprintf("mkimg reads sets compressed with gzip or xz, or plain tar (%s), not %s's bzip2 (%s): name the set %s (sets=%s)",
			strings.Join(setname.Readable, ", "), e.name, strings.Join(unreadableExts(), ", "), base, base)
	}
	return ""
}

// unreadable reports whether set name ends in an archive's extension
// the builder does not read (bzip2's: not in setname.Readable).
func unreadable(name string) bool {
	_, archive := setname.Any.Cut(name)
	_, readable := setname.Readable.Cut(name)
	return archive && !readable
}

// unreadableExts are the set archives' extensions the builder does not
// read.
func unreadableExts() []string {
	var exts []string
	for _, ext := range setname.Any {
		if unreadable("x" + ext) {
			exts = append(exts, ext)
		}
	}
	return exts
}

// fetchName is the name smolvmm fetch takes for set name: without the
// archive's extension, which fetch picks from the release's SHA512 (a
// 9.x release has base.tgz, a 10.x one base.tar.xz; fetch refuses the
// other series' name). Any set archive's extension is cut, bzip2's too:
// fetch fetches what the release has, whatever the set was called.
func fetchName(name string) string { return setname.Any.Base(name) }

// fetchSetArgs is the arguments of smolvmm fetch for the sets names of
// port arch.
func fetchSetArgs(arch string, names ...string) string {
	args := strings.Join(names, " ")
	if arch != "" && arch != fetch.DefaultArch {
		args = "--arch " + arch + " " + args
	}
	return args
}

// missingSets is the error for the service's sets found nowhere: all of
// them, so that one fetch gets them all (the first alone was named, and
// the next mkimg named the next). Each set is named once, with the files
// looked for it (its own name when it is an archive's); one found under
// its name without the extension is not fetched, but named so. With the
// cache refused (the same for every set: one port), no fetch is advised,
// which that cache would refuse too, and the refusal is said instead.
func missingSets(m []*missingSetError) error {
	var quoted, archives, dirs, fetchNames, renames []string
	seen, fetchSeen := map[string]bool{}, map[string]bool{}
	var first *missingSetError
	for _, e := range m {
		if seen[e.name] {
			continue
		}
		seen[e.name] = true
		if first == nil {
			first = e
		}
		quoted = append(quoted, strconv.Quote(e.name))
		archives = append(archives, strings.Join(e.archives, " or "))
		dirs = append(dirs, e.name)
		if r := e.rename(); r != "" {
			renames = append(renames, "; "+r)
		}
		if f := fetchName(e.name); e.found == "" && !fetchSeen[f] {
			fetchSeen[f] = true
			fetchNames = append(fetchNames, f)
		}
	}
	if len(quoted) == 1 {
		return first
	}
	if first.refused != nil {
		return &fileError{fmt.Sprintf("sets %s: no %s, in the current directory or in sets/, and no directory %s in the current directory or in sets/%s; the fetch cache is not looked in: %v",
			strings.Join(quoted, ", "), strings.Join(archives, ", nor "), orList(dirs), strings.Join(renames, ""), first.refused.err), first.refused}
	}
	fetchAdvice := ""
	if len(fetchNames) > 0 {
		fetchAdvice = fmt.Sprintf(", or fetch the sets first (smolvmm fetch %s)", fetchSetArgs(first.arch, fetchNames...))
	}
	return fmt.Errorf("sets %s: no %s, in the current directory, in sets/ or in %s, and no directory %s in the current directory or in sets/: pass -x PATH,...%s%s",
		strings.Join(quoted, ", "), strings.Join(archives, ", nor "), first.cache, orList(dirs), fetchAdvice, strings.Join(renames, ""))
}

// orList is items as a sentence's list: "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// cachedSet returns set name from the cache of the default version of
// port arch ("" is the default port) when
// smolvmm fetch put it there, re-verified against the cached SHA512 file
// (a copy that no longer matches is an error, never used). It also returns
// the directory it looked in, for messages. A cache root may not use
// (another user's, fetch.ErrForeignCache) is a *cachedSetError, as fetch
// and up refuse it: its digest files are that user's to write. findSet
// goes on past it, to a directory set.
func cachedSet(name, arch string) (path, dir string, err error) {
	dir, digests, err := cachedDigests(arch)
	if err != nil {
		return "", dir, &cachedSetError{name: name, err: err}
	}
	if digests == nil {
		return "", dir, nil
	}
	file, sum, err := digests.SetFile(name)
	if err != nil {
		return "", dir, nil
	}
	path = filepath.Join(dir, file)
	if _, err := os.Stat(path); err != nil {
		return "", dir, nil
	}
	got, err := fetch.HashFile(path)
	if err != nil {
		return "", dir, fmt.Errorf("set %s: %w", path, err)
	}
	if got != sum {
		return "", dir, fmt.Errorf("set %s in the cache does not match its SHA512 (expected %s, actual %s): run smolvmm fetch %s to download it again", path, sum, got, name)
	}
	return path, dir, nil
}

// cachedSetError refuses a set looked for in a fetch cache root may not
// use (a *fetch.ForeignCacheError): the advice (foreignCacheAdvice) is
// -x, mkimg having no --cache. findSet says it only for a set found
// nowhere else, wrapped in that set's *missingSetError.
type cachedSetError struct {
	name string
	err  error
}

func (e *cachedSetError) Error() string {
	return fmt.Sprintf("set %q: not in the current directory nor in sets/, and the fetch cache is not looked in: %v", e.name, e.err)
}

func (e *cachedSetError) Unwrap() error { return e.err }

// cachedDigests is the SHA512 smolvmm fetch verified into its cache for
// the default version of port arch, nil when there is none, and the
// directory it looked in, for messages. err is the fetch.ErrForeignCache
// of a default cache that is another user's, root's refusal
// (fetch.Fetcher.ReleaseDir, which fetch and up take it from).
func cachedDigests(arch string) (dir string, d fetch.Digests, err error) {
	if arch == "" {
		arch = fetch.DefaultArch
	}
	rel, err := new(fetch.Fetcher).ReleaseDir(fetch.DefaultVersion, arch)
	if errors.Is(err, fetch.ErrForeignCache) {
		return "the fetch cache", nil, err
	}
	if err != nil {
		return "the fetch cache", nil, nil
	}
	dir = filepath.Join(rel, "sets")
	data, err := os.ReadFile(filepath.Join(dir, "SHA512"))
	if err != nil {
		return dir, nil, nil
	}
	d, err = fetch.ParseDigests(data)
	if err != nil {
		return dir, nil, nil
	}
	return dir, d, nil
}

// releaseSetFile is the file the default release of port arch has for
// set name, as its cached SHA512 lists it; "" when that is not known.
func releaseSetFile(name, arch string) string {
	_, d, _ := cachedDigests(arch)
	if d == nil {
		return ""
	}
	file, _, err := d.SetFile(name)
	if err != nil {
		return ""
	}
	return file
}

// progressBar shows a long step (8 MiB or more) on a terminal; elsewhere it
// does nothing.
type progressBar struct {
	bar  *byteBar
	w    io.Writer
	what string
	tty  bool // w is a terminal; asked once, not on every update
}

func progress(log io.Writer, what string) *progressBar {
	return &progressBar{w: log, what: what, tty: isTerminal(log)}
}

func (p *progressBar) update(done, total uint64) {
	if !p.tty || total < 8<<20 {
		return // short builds finish before a bar would help
	}
	if p.bar == nil {
		p.bar = newProgressBar(p.w, p.what, int64(total), 0)
	}
	p.bar.Set64(int64(done))
}

func (p *progressBar) done() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// buildLog is the Log mkimg and up give the image builder: its warnings
// are said as every other of the command's, "smolvmm COMMAND: warning:
// ..." (they came bare, "warning: service web: options.mk is not read",
// the one message of smolvmm without its name), and the postinst
// scripts' output is written as the scripts wrote it.
type buildLog struct {
	io.Writer
	command string // "mkimg"
}

// newBuildLog is a buildLog on w, or nil (nothing logged) when w is nil.
func newBuildLog(w io.Writer, command string) io.Writer {
	if w == nil {
		return nil
	}
	return buildLog{w, command}
}

// Warn makes buildLog an imagebuilder.Warner.
func (l buildLog) Warn(msg string) {
	warnf(l.Writer, l.command, "%s", msg) // errorline.go: inert, a set's names in it
}

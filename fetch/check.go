package fetch

import "errors"

// ErrBadArgument is matched by Check's error: a version, arch, set name or
// mirror URL that Fetch refuses before any I/O.
var ErrBadArgument = errors.New("bad release argument")

// badArgument wraps a refusal so that it matches ErrBadArgument and keeps
// its own text.
type badArgument struct{ err error }

func (e badArgument) Error() string   { return e.err.Error() }
func (e badArgument) Unwrap() []error { return []error{ErrBadArgument, e.err} }

// Check reports, without touching the cache or the network, whether Fetch
// would refuse these arguments or f's mirror: a version, arch or set that
// is not a plain name (it would leave the cache directory or the mirror's
// tree), or a mirror that is not an http(s) URL or has a query or a
// fragment (it names a directory, to which the files' paths are appended). Callers check first so
// that a typo fails before other work; the error matches ErrBadArgument.
func (f *Fetcher) Check(version, arch string, sets ...string) error {
	for _, c := range []struct{ field, v string }{{"version", version}, {"arch", arch}} {
		if err := checkComponent(c.field, c.v); err != nil {
			return badArgument{err}
		}
	}
	for _, s := range sets {
		if err := checkComponent("set", s); err != nil {
			return badArgument{err}
		}
	}
	if _, err := f.mirror(); err != nil {
		return badArgument{err}
	}
	return nil
}

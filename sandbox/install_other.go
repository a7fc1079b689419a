//go:build !(linux && amd64)

package sandbox

// Install reports ErrUnsupported: the filter and its SIGSYS handler are
// only implemented on linux/amd64.
func Install(f Filter) (Installed, error) { return Installed{}, ErrUnsupported }

const supported = false

// Program reports ErrUnsupported: the allow-list is written for
// linux/amd64's system calls.
func (f *Filter) Program() ([]any, error) { return nil, ErrUnsupported }

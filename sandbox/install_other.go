//go:build !(linux && amd64)

package sandbox

// Prepared is a filter made ready for Install; here there is none.
type Prepared struct{}

// Prepare returns a Prepared whose Install reports ErrUnsupported.
func Prepare(f Filter) *Prepared { return &Prepared{} }

// Install reports ErrUnsupported: the filter and its SIGSYS handler are
// only implemented on linux/amd64.
func (p *Prepared) Install() (Installed, error) { return Installed{}, ErrUnsupported }

// Install reports ErrUnsupported (see Prepared.Install).
func Install(f Filter) (Installed, error) { return Installed{}, ErrUnsupported }

// Program reports ErrUnsupported: the allow-list is written for
// linux/amd64's system calls.
func (f *Filter) Program() ([]any, error) { return nil, ErrUnsupported }

// Sizes reports ErrUnsupported (see Program).
func (f *Filter) Sizes() (static, cgo int, err error) { return 0, 0, ErrUnsupported }

package main

import "github.com/smolvmm/smolvmm/netback"

// lateBackend is a restored VM's shared network (--net user:NAME), joined
// only once the restore has succeeded (join; netback.LateBackend says
// why), with the --net configuration it joins with.
type lateBackend struct {
	*netback.LateBackend
	nc netConfig
}

func newLateBackend(nc netConfig) *lateBackend {
	open := func() (netback.Backend, error) {
		b, err := openBackend(nc) // jail.go
		if err != nil {
			return nil, backendError(nc.Spec, err) // netflags.go
		}
		return b, nil
	}
	return &lateBackend{LateBackend: netback.NewLateBackend(open), nc: nc}
}

// join joins the network; failer is as openNIC's. A backend closed
// meanwhile (the machine's Close) joins nothing.
func (l *lateBackend) join() (failer nicFailer, err error) {
	b, err := l.Join()
	if err != nil {
		return nil, err
	}
	failer, _ = b.(nicFailer)
	return failer, nil
}

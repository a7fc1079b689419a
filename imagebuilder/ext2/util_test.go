package ext2

import "errors"

func asTooSmall(err error, target **TooSmallError) bool { return errors.As(err, target) }

func err2s(err error) string { return err.Error() }

package fetch

import (
	"crypto/sha512"
	"encoding/hex"
	"strconv"
)

func sha512hex(b []byte) string {
	s := sha512.Sum512(b)
	return hex.EncodeToString(s[:])
}

func itoa(n int) string { return strconv.Itoa(n) }

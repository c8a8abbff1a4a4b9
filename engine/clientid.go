package engine

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
)

const defaultClientIDLen = 32

// ChildID derives a child's client order id from (parent, slice, venue,
// attempt), so that a retry or a restart finds the same order at the venue
// instead of placing a second one. The readable form
// "<parent>-<slice>-<venue>-<attempt>" is used when it fits maxLen and the
// [A-Za-z0-9-] charset; otherwise "bx" plus a base32 hash of it, cut to
// maxLen. Both are deterministic.
func ChildID(parent string, slice int, venue string, attempt, maxLen int) string {
	if maxLen <= 0 {
		maxLen = defaultClientIDLen
	}
	readable := fmt.Sprintf("%s-%d-%s-%d", parent, slice, venue, attempt)
	if len(readable) <= maxLen && plain(readable) {
		return readable
	}
	sum := sha256.Sum256([]byte(readable))
	h := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))
	id := "bx" + h
	if len(id) > maxLen {
		id = id[:maxLen]
	}
	return id
}

func plain(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

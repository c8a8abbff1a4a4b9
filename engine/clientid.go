package engine

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
)

const defaultClientIDLen = 32

// IDRule is what a venue takes as a client order id: at most MaxLen
// characters (zero: 32), each allowed by Allowed (nil: [A-Za-z0-9-]).
type IDRule struct {
	MaxLen  int
	Allowed func(rune) bool
}

// ChildID derives a child's client order id from (parent, slice, venue,
// attempt), so that a retry or a restart finds the same order at the venue
// instead of placing a second one. The readable form
// "<parent>-<slice>-<venue>-<attempt>" is used when it fits the venue's
// rule and [A-Za-z0-9-]; otherwise "bx" plus a lower-case base32 hash of
// it ([a-z2-7]), cut to the length. Both are deterministic.
func ChildID(parent string, slice int, venue string, attempt int, rule IDRule) string {
	maxLen := rule.MaxLen
	if maxLen <= 0 {
		maxLen = defaultClientIDLen
	}
	readable := fmt.Sprintf("%s-%d-%s-%d", parent, slice, venue, attempt)
	if len(readable) <= maxLen && plain(readable) && (rule.Allowed == nil || strings.IndexFunc(readable, func(r rune) bool {
		return !rule.Allowed(r)
	}) < 0) {
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

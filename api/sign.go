package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// The headers of a signed request (HTTP headers, or NATS message headers).
const (
	HeaderKey       = "BX-Key"       // the key id
	HeaderTimestamp = "BX-Timestamp" // Unix milliseconds
	HeaderNonce     = "BX-Nonce"     // 16 to 64 characters, never reused within the window
	HeaderSignature = "BX-Signature" // lower-case hex HMAC-SHA256 of the canonical string
)

// Window is how far a request's timestamp may be from the server's clock,
// either way; a nonce is remembered for as long.
const Window = 30 * time.Second

// Canonical is the string a request's signature covers, one item a line:
// the method (NATS for a NATS request), the path (the subject for NATS),
// the raw query string (empty for NATS), the timestamp, the nonce, and the
// lower-case hex SHA-256 of the body (of nothing when there is none).
func Canonical(method, path, query string, timestamp int64, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	return strings.Join([]string{strings.ToUpper(method), path, query, strconv.FormatInt(timestamp, 10), nonce,
		hex.EncodeToString(sum[:])}, "\n")
}

// Sign returns the signature of a canonical string with a key's secret.
func Sign(secret []byte, canonical string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(canonical))
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether signature is the canonical string's, comparing
// in constant time.
func Verify(secret []byte, canonical, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, canonical)), []byte(strings.ToLower(signature)))
}

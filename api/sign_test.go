package api

import (
	"strings"
	"testing"
)

// The vector is computed independently (Python's hmac and hashlib).
func TestSign_MatchesAnIndependentlyComputedVector(t *testing.T) {
	body := []byte(`{"client_order_id":"c1"}`)
	c := Canonical("post", "/v1/orders", "", 1732350000000, "n0nce-0123456789ab", body)
	want := "d7de2d8674bf4a543cac0c755d2a9b19a1a0ab12d21edb22423725766c64caf8"
	if got := Sign([]byte("test-secret-not-real"), c); got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	if !Verify([]byte("test-secret-not-real"), c, strings.ToUpper(want)) {
		t.Fatal("upper-case hex refused")
	}
	for name, bad := range map[string]string{
		"another body":   Canonical("POST", "/v1/orders", "", 1732350000000, "n0nce-0123456789ab", []byte(`{}`)),
		"another nonce":  Canonical("POST", "/v1/orders", "", 1732350000000, "n0nce-0123456789ac", body),
		"another time":   Canonical("POST", "/v1/orders", "", 1732350000001, "n0nce-0123456789ab", body),
		"another query":  Canonical("POST", "/v1/orders", "state=done", 1732350000000, "n0nce-0123456789ab", body),
		"another path":   Canonical("POST", "/v1/orders/x", "", 1732350000000, "n0nce-0123456789ab", body),
		"another method": Canonical("PATCH", "/v1/orders", "", 1732350000000, "n0nce-0123456789ab", body),
	} {
		if Verify([]byte("test-secret-not-real"), bad, want) {
			t.Errorf("%s: the signature still verifies", name)
		}
	}
	if !strings.HasSuffix(Canonical("GET", "/healthz", "", 1, "n", nil), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") {
		t.Fatal("an empty body hashes as SHA-256 of nothing")
	}
}

package coinbasefake

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWT rules Coinbase enforces on CDP keys.
const (
	jwtIssuer      = "cdp"
	jwtMaxLifetime = 2 * time.Minute
)

// claims are the JWT claims of a Coinbase request.
type claims struct {
	jwt.RegisteredClaims
	URI string `json:"uri"`
}

// authenticated answers 401 as Coinbase does (a bare "Unauthorized") unless
// the request carries a JWT the key signed for this very request.
func (s *Server) authenticated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.verify(r); err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, "Unauthorized\n")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// verify checks the bearer JWT: ES256 by the key, kid and sub the key
// name, iss "cdp", a nonce, nbf ≤ now < exp on the auth clock with exp at
// most two minutes after nbf, and uri = "METHOD host/path" of r.
func (s *Server) verify(r *http.Request) error {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return errors.New("no bearer token")
	}
	var c claims
	_, err := jwt.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != s.o.KeyName {
			return nil, errors.New("kid is not the key name")
		}
		if n, _ := t.Header["nonce"].(string); n == "" {
			return nil, errors.New("no nonce")
		}
		return s.o.PublicKey, nil
	}, jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}), jwt.WithIssuer(jwtIssuer),
		jwt.WithSubject(s.o.KeyName), jwt.WithExpirationRequired(), jwt.WithNotBeforeRequired(),
		jwt.WithTimeFunc(s.o.AuthClock.Now))
	if err != nil {
		return err
	}
	if life := c.ExpiresAt.Sub(c.NotBefore.Time); life > jwtMaxLifetime {
		return fmt.Errorf("token lives %s", life)
	}
	if want := r.Method + " " + r.Host + r.URL.Path; c.URI != want {
		return fmt.Errorf("uri %q is not %q", c.URI, want)
	}
	return nil
}

// NewKey makes a fresh API key as Coinbase hands one out: a name of the
// form organizations/{org}/apiKeys/{key} and an EC P-256 private key in
// SEC1 PEM ("EC PRIVATE KEY"). The public key is what the fake checks
// JWTs with. Every call makes a new key; none is kept anywhere.
func NewKey() (keyName, pemText string, pub *ecdsa.PublicKey, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, fmt.Errorf("coinbasefake: generate key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return "", "", nil, fmt.Errorf("coinbasefake: encode key: %w", err)
	}
	pemText = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	return "organizations/" + newUUID() + "/apiKeys/" + newUUID(), pemText, &k.PublicKey, nil
}

// newUUID returns a random (version 4) UUID, as Coinbase's ids are.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

package coinbase

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/venues"
)

// JWT rules of Coinbase's CDP key authentication.
const (
	jwtIssuer   = "cdp"
	jwtLifetime = 2 * time.Minute
)

// signer makes the per-request JWT. It never prints the key name or key.
type signer struct {
	keyName venues.Secret
	key     *ecdsa.PrivateKey
	clk     clock.Clock // wall clock
}

// claims are the JWT claims Coinbase checks: sub, iss, nbf, exp and the
// request's "METHOD host/path".
type claims struct {
	jwt.RegisteredClaims
	URI string `json:"uri"`
}

// token returns a fresh JWT for one request: header kid = key name and a
// random nonce; claims sub = key name, iss "cdp", nbf now, exp nbf+2 min,
// uri = "METHOD host/path" (no scheme, no query).
func (s *signer) token(method, host, path string) (string, error) {
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return "", fmt.Errorf("jwt nonce: %w", err)
	}
	name := s.keyName.Reveal()
	now := s.clk.Now().Truncate(time.Second)
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: name, Issuer: jwtIssuer,
			NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(jwtLifetime)),
		},
		URI: method + " " + host + path,
	})
	t.Header["kid"] = name
	t.Header["nonce"] = hex.EncodeToString(n[:])
	signed, err := t.SignedString(s.key)
	if err != nil {
		// The library's errors name no key material; keep only the kind.
		return "", errors.New("jwt: signing failed")
	}
	return signed, nil
}

// parsePrivateKey reads an EC P-256 private key from PEM text, SEC1 or
// PKCS#8. Key files pasted from Coinbase's JSON carry escaped newlines.
// Errors describe the problem, never the text.
func parsePrivateKey(text string) (*ecdsa.PrivateKey, error) {
	text = strings.TrimSpace(text)
	if !strings.Contains(text, "\n") && strings.Contains(text, `\n`) {
		text = strings.ReplaceAll(text, `\n`, "\n")
	}
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("not PEM: paste the key with its -----BEGIN/END----- lines")
	}
	var key *ecdsa.PrivateKey
	switch block.Type {
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("EC PRIVATE KEY block does not parse as a SEC1 key")
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("PRIVATE KEY block does not parse as a PKCS#8 key")
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("a %T key; Coinbase's ES256 needs an EC P-256 key (an Ed25519 key is not supported)", k)
		}
		key = ec
	default:
		return nil, fmt.Errorf("PEM block %q; want EC PRIVATE KEY or PRIVATE KEY", block.Type)
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("curve %s; ES256 needs P-256", key.Curve.Params().Name)
	}
	return key, nil
}

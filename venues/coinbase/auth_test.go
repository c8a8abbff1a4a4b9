package coinbase

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/coinbase/coinbasefake"
	"github.com/blockexec/blockexec/venues/venuetest"
)

func TestJWT_CarriesTheClaimsCoinbaseSpecifies(t *testing.T) {
	wall := clock.NewVirtual(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC))
	r := newRig(t, func(c *Config, o *coinbasefake.Options) { c.AuthClock, o.AuthClock = wall, wall })
	ctx := context.Background()
	if _, err := r.v.Instrument(ctx, venuetest.Symbol); err != nil {
		t.Fatal(err)
	}
	if _, err := r.v.Book(ctx, venuetest.Symbol, 3); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(r.fake.URL())
	nonces := map[string]bool{}
	sent := r.rec.requests()
	if len(sent) < 3 {
		t.Fatalf("%d requests", len(sent))
	}
	for _, s := range sent {
		var c claims
		tok, err := jwt.ParseWithClaims(s.Token, &c, func(*jwt.Token) (any, error) { return r.pub, nil },
			jwt.WithTimeFunc(wall.Now))
		if err != nil {
			t.Fatalf("%s %s: %v", s.Method, s.Path, err)
		}
		nonce, _ := tok.Header["nonce"].(string)
		checks := []struct {
			what      string
			got, want any
		}{
			{"alg", tok.Header["alg"], "ES256"},
			{"kid", tok.Header["kid"], r.keyName},
			{"sub", c.Subject, r.keyName},
			{"iss", c.Issuer, "cdp"},
			{"nbf", c.NotBefore.Unix(), wall.Now().Unix()},
			{"exp", c.ExpiresAt.Unix(), wall.Now().Add(2 * time.Minute).Unix()},
			{"uri", c.URI, s.Method + " " + u.Host + s.Path},
			{"nonce length", len(nonce), 32},
			{"nonce reused", nonces[nonce], false},
		}
		for _, ck := range checks {
			if ck.got != ck.want {
				t.Errorf("%s %s: %s is %v, want %v", s.Method, s.Path, ck.what, ck.got, ck.want)
			}
		}
		nonces[nonce] = true
		if strings.Contains(c.URI, "?") {
			t.Errorf("uri %q carries the query; Coinbase signs the path only", c.URI)
		}
	}
}

func TestFake_RefusesJWTsCoinbaseWouldRefuse(t *testing.T) {
	_, otherPEM, _, err := coinbasefake.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		tweak func(*Config, *coinbasefake.Options)
		rw    func(*http.Request)
	}{
		{"expired", func(c *Config, _ *coinbasefake.Options) { c.AuthClock = offsetClock{-10 * time.Minute} }, nil},
		{"not yet valid", func(c *Config, _ *coinbasefake.Options) { c.AuthClock = offsetClock{10 * time.Minute} }, nil},
		{"signed by another key", func(c *Config, _ *coinbasefake.Options) { c.PrivateKey = venues.NewSecret(otherPEM) }, nil},
		{"another key name", func(c *Config, _ *coinbasefake.Options) {
			c.KeyName = venues.NewSecret("organizations/x/apiKeys/y")
		}, nil},
		{"signed for another path", nil, func(r *http.Request) { r.URL.Path = "/api/v3/brokerage/key_permissions" }},
		{"signed for another method", nil, func(r *http.Request) { r.Method = http.MethodPost }},
		{"no token", nil, func(r *http.Request) { r.Header.Del("Authorization") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.tweak)
			r.rec.rewrite = tc.rw
			_, _, err := r.v.Place(context.Background(), market.OrderRequest{ClientID: "a-1", Symbol: venuetest.Symbol,
				Side: market.Sell, Price: venuetest.D("60000"), Qty: venuetest.D("0.3"), TIF: market.IOC})
			var re *venues.RejectError
			if !errors.As(err, &re) || re.Code != "AUTH" {
				t.Fatalf("%v, want a RejectError with code AUTH", err)
			}
			if len(r.fake.Placed()) != 0 {
				t.Fatalf("placed %v", r.fake.Placed())
			}
			if strings.Contains(err.Error(), r.keyName) || strings.Contains(r.logs.String(), "apiKeys") {
				t.Fatal("the key name reached an error or the logs")
			}
		})
	}
	t.Run("answers 401 Unauthorized", func(t *testing.T) {
		r := newRig(t, nil)
		res, err := http.Get(r.fake.URL() + "/api/v3/brokerage/products")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusUnauthorized || strings.TrimSpace(string(b)) != "Unauthorized" {
			t.Fatalf("%d %q", res.StatusCode, b)
		}
	})
}

func TestParsePrivateKey_TakesCoinbasesFormsAndNamesNoKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	sec1384, _ := x509.MarshalECPrivateKey(p384)
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rk)
	enc := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	cases := []struct {
		name, text string
		ok         bool
	}{
		{"SEC1", enc("EC PRIVATE KEY", sec1), true},
		{"PKCS8", enc("PRIVATE KEY", pkcs8), true},
		{"escaped newlines from the JSON key file", strings.ReplaceAll(enc("EC PRIVATE KEY", sec1), "\n", `\n`), true},
		{"P-384", enc("EC PRIVATE KEY", sec1384), false},
		{"RSA", enc("PRIVATE KEY", rsaDER), false},
		{"not PEM", "MHcCAQEEIDa1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0", false},
		{"truncated", enc("EC PRIVATE KEY", sec1[:20]), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := parsePrivateKey(tc.text)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && !k.PublicKey.Equal(&ec.PublicKey) {
				t.Fatal("another key came out")
			}
			if err != nil {
				for _, line := range strings.Split(tc.text, "\n") {
					if len(line) >= 12 && !strings.HasPrefix(line, "-----") && strings.Contains(err.Error(), line[:12]) {
						t.Fatalf("the error quotes the key: %v", err)
					}
				}
			}
		})
	}
}

func TestNew_RefusesBadConfigWithoutPrintingSecrets(t *testing.T) {
	keyName, pemText, _, err := coinbasefake.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	good := func() Config {
		return Config{KeyName: venues.NewSecret(keyName), PrivateKey: venues.NewSecret(pemText)}
	}
	cases := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"no key name", func(c *Config) { c.KeyName = venues.Secret{} }, "key_name"},
		{"key name with spaces", func(c *Config) { c.KeyName = venues.NewSecret(" " + keyName) }, "key_name"},
		{"no private key", func(c *Config) { c.PrivateKey = venues.Secret{} }, "private_key"},
		{"key name as private key", func(c *Config) { c.PrivateKey = venues.NewSecret(keyName) }, "private_key"},
		{"bad base url", func(c *Config) { c.BaseURL = "ftp://example.com" }, "base_url"},
		{"fee in percent", func(c *Config) { c.TakerFee = venuetest.D("0.6") }, "taker_fee"},
		{"empty product id", func(c *Config) { c.Symbols = map[string]string{"BTCUSD": " "} }, "symbols"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.mod(&cfg)
			_, err := New(cfg, clock.NewVirtual(venuetest.T0), zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("%v, want an error naming %s", err, tc.field)
			}
			for _, s := range []string{keyName, strings.Split(pemText, "\n")[1]} {
				if strings.Contains(err.Error(), s[:12]) {
					t.Fatalf("the error prints a secret: %v", err)
				}
			}
		})
	}
	if _, err := New(good(), nil, zerolog.Nop()); err == nil {
		t.Fatal("no market clock accepted")
	}
	v, err := New(good(), clock.NewVirtual(venuetest.T0), zerolog.Nop())
	if err != nil || v.Name() != "coinbase" || v.base.String() != DefaultBaseURL || v.MaxClientIDLen() != 36 {
		t.Fatalf("defaults: %v; name %q, base %s", err, v.Name(), v.base)
	}
}

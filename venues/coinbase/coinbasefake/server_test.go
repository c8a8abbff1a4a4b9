package coinbasefake

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/venues/sim"
	"github.com/blockexec/blockexec/venues/venuetest"
)

// fixture is a fake over a fresh sim and a client that signs by hand.
type fixture struct {
	s       *Server
	keyName string
	key     *ecdsa.PrivateKey
	wall    *clock.Virtual
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	m, err := sim.NewMarket(sim.MarketConfig{Seed: 1, Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT",
		StartPrice: venuetest.D("63000"), Start: venuetest.T0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewVirtual(venuetest.T0)
	sv, err := sim.New(m, clk, sim.Config{Name: "core", Instrument: venuetest.Rules})
	if err != nil {
		t.Fatal(err)
	}
	keyName, pemText, pub, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwt.ParseECPrivateKeyFromPEM([]byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	wall := clock.NewVirtual(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s, err := New(Options{Venue: sv, KeyName: keyName, PublicKey: pub, Clock: clk, AuthClock: wall})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return fixture{s: s, keyName: keyName, key: key, wall: wall}
}

// do sends method path with body, signed with a JWT living life (none if
// life is zero), and returns the status and body.
func (f fixture) do(t *testing.T, method, path, body string, life time.Duration) (int, string) {
	t.Helper()
	u, _ := url.Parse(f.s.URL() + path)
	req, err := http.NewRequestWithContext(context.Background(), method, u.String(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if life > 0 {
		now := f.wall.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims{RegisteredClaims: jwt.RegisteredClaims{
			Subject: f.keyName, Issuer: "cdp", NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(life)),
		}, URI: method + " " + u.Host + u.Path})
		tok.Header["kid"], tok.Header["nonce"] = f.keyName, "0123456789abcdef"
		signed, err := tok.SignedString(f.key)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+signed)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestServer_SpeaksCoinbasesProtocol(t *testing.T) {
	f := newFixture(t)
	order := func(clientID, config string) string {
		return `{"client_order_id":"` + clientID + `","product_id":"BTC-USDT","side":"SELL","order_configuration":` + config + `}`
	}
	ioc := `{"sor_limit_ioc":{"base_size":"0.3","limit_price":"60000.00"}}`
	cases := []struct {
		name, method, path, body string
		life                     time.Duration
		status                   int
		has                      string
	}{
		{"the server time is public", "GET", pathTime, "", 0, 200, `"epochMillis":"1735787045000"`},
		{"no token", "GET", prefix + "/products", "", 0, 401, "Unauthorized"},
		{"a token living longer than two minutes", "GET", prefix + "/products", "", 5 * time.Minute, 401, "Unauthorized"},
		{"a bad token is refused before routing", "GET", prefix + "/nowhere", "", 0, 401, "Unauthorized"},
		{"the product, decimals as strings", "GET", prefix + "/products/BTC-USDT", "", time.Minute, 200,
			`"base_increment":"0.003"`},
		{"an unknown product", "GET", prefix + "/products/DOGE-USDT", "", time.Minute, 404, `"error":"NOT_FOUND"`},
		{"an order placed", "POST", PathOrders, order("a-1", ioc), time.Minute, 200, `"success":true`},
		{"the same client id returns that order", "POST", PathOrders, order("a-1", ioc), time.Minute, 200,
			`"client_order_id":"a-1"`},
		{"a market order is not supported", "POST", PathOrders,
			order("a-2", `{"market_market_ioc":{"base_size":"0.3"}}`), time.Minute, 200, "UNSUPPORTED_ORDER_CONFIGURATION"},
		{"sizes as numbers", "POST", PathOrders, order("a-3", `{"sor_limit_ioc":{"base_size":0.3,"limit_price":"1"}}`),
			time.Minute, 400, "INVALID_ARGUMENT"},
		{"an unknown order", "GET", prefix + "/orders/historical/nope", "", time.Minute, 404, "NOT_FOUND"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.do(t, tc.method, tc.path, tc.body, tc.life)
			if status != tc.status || !strings.Contains(body, tc.has) {
				t.Fatalf("%d %s, want %d with %s", status, body, tc.status, tc.has)
			}
		})
	}
	if p := f.s.Placed(); len(p) != 1 || p[0] != "a-1" {
		t.Fatalf("placed %v, want [a-1]", p)
	}
	// Both answers for a-1 name the same order.
	var first, again createResponse
	_, b1 := f.do(t, "POST", PathOrders, order("a-1", ioc), time.Minute)
	_, b2 := f.do(t, "POST", PathOrders, order("a-1", `{"sor_limit_ioc":{"base_size":"9","limit_price":"1.00"}}`),
		time.Minute)
	if json.Unmarshal([]byte(b1), &first) != nil || json.Unmarshal([]byte(b2), &again) != nil ||
		first.OrderID == "" || first.OrderID != again.OrderID {
		t.Fatalf("%s\n%s", b1, b2)
	}
}

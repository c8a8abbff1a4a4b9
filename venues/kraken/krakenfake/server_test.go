package krakenfake

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues/sim"
)

var t0 = time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

type fixture struct {
	srv         *Server
	clk         *clock.Virtual
	sim         *sim.Venue
	key, secret string
	nonce       int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	m, err := sim.NewMarket(sim.MarketConfig{Seed: 3, Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT",
		StartPrice: d("63000"), Start: t0.Add(-8 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewVirtual(t0)
	sv, err := sim.New(m, clk, sim.Config{Name: "core", Share: 0.5, Instrument: market.Instrument{Tick: d("0.1"),
		Step: d("0.00000001"), MinQty: d("0.00005"), MinNotional: d("0.5"), MakerFee: d("0.0025"), TakerFee: d("0.004")}})
	if err != nil {
		t.Fatal(err)
	}
	key, secret, err := NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Venue: sv, APIKey: key, Secret: secret, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, clk: clk, sim: sv, key: key, secret: secret, nonce: 1}
}

// answer is Kraken's envelope.
type answer struct {
	Error  []string        `json:"error"`
	Result json.RawMessage `json:"result"`
}

// post signs and sends a private call; edit may spoil the request.
func (f *fixture) post(t *testing.T, method string, params url.Values, edit func(*http.Request)) answer {
	t.Helper()
	f.nonce++
	if params == nil {
		params = url.Values{}
	}
	params.Set("nonce", strconv.FormatInt(f.nonce, 10))
	body := params.Encode()
	secret, _ := base64.StdEncoding.DecodeString(f.secret)
	path := "/0/private/" + method
	req, err := http.NewRequest(http.MethodPost, f.srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("API-Key", f.key)
	req.Header.Set("API-Sign", base64.StdEncoding.EncodeToString(sign(secret, path, params.Get("nonce"), []byte(body))))
	if edit != nil {
		edit(req)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%s: not Kraken's envelope: %s", req.URL.Path, b)
	}
	return a
}

func (a answer) err() string {
	if len(a.Error) == 0 {
		return ""
	}
	return a.Error[0]
}

func TestAuth_RefusesWhatKrakenRefuses(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		edit func(*http.Request)
		want string
	}{
		{"signed", nil, ""},
		{"no key", func(r *http.Request) { r.Header.Del("API-Key") }, "EAPI:Invalid key"},
		{"other key", func(r *http.Request) { r.Header.Set("API-Key", "someone-else") }, "EAPI:Invalid key"},
		{"no signature", func(r *http.Request) { r.Header.Del("API-Sign") }, "EAPI:Invalid signature"},
		{"signature of another body", func(r *http.Request) {
			r.Header.Set("API-Sign", base64.StdEncoding.EncodeToString([]byte("not the signature")))
		}, "EAPI:Invalid signature"},
		{"GET", func(r *http.Request) { r.Method = http.MethodGet }, "EGeneral:Invalid arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.post(t, "Balance", nil, tc.edit).err(); got != tc.want {
				t.Fatalf("%q, want %q", got, tc.want)
			}
		})
	}
}

func TestAddOrder_ClOrdIDIsUniqueAmongOpenOrdersOnly(t *testing.T) {
	f := newFixture(t)
	bid, _ := f.sim.Book(t.Context(), "BTCUSDT", 1)
	far := bid.Asks[0].Price.Mul(d("1.05")).Round(1)
	rest := url.Values{"pair": {"XBTUSDT"}, "type": {"sell"}, "ordertype": {"limit"}, "price": {far.String()},
		"volume": {"0.1"}, "cl_ord_id": {"dup-1"}}
	if e := f.post(t, "AddOrder", rest, nil).err(); e != "" {
		t.Fatal(e)
	}
	if e := f.post(t, "AddOrder", rest, nil).err(); e != "EGeneral:Invalid arguments:cl_ord_id not unique" {
		t.Fatalf("an open order's id again: %q", e)
	}
	if e := f.post(t, "CancelOrder", url.Values{"cl_ord_id": {"dup-1"}}, nil).err(); e != "" {
		t.Fatal(e)
	}
	if e := f.post(t, "AddOrder", rest, nil).err(); e != "" {
		t.Fatalf("a closed order's id again: %q (Kraken takes it)", e)
	}
	if got := f.srv.Placed(); len(got) != 2 {
		t.Fatalf("placed %v, want the id twice", got)
	}
}

func TestAddOrder_RulesAnswerInKrakensWords(t *testing.T) {
	f := newFixture(t)
	b, _ := f.sim.Book(t.Context(), "BTCUSDT", 1)
	bid := b.Bids[0].Price.String()
	for _, tc := range []struct {
		name   string
		params url.Values
		want   string
	}{
		{"unknown pair", url.Values{"pair": {"XBTEUR"}}, "EQuery:Unknown asset pair"},
		{"below ordermin", url.Values{"volume": {"0.00001"}}, "EOrder:Order minimum not met"},
		{"off the tick", url.Values{"price": {"63000.05"}}, "EOrder:Tick size check failed"},
		{"too many decimals", url.Values{"volume": {"0.000050001"}}, "EGeneral:Invalid arguments:volume"},
		{"crossing post-only", url.Values{"oflags": {"post"}}, "EOrder:Post only order"},
		{"cl_ord_id too long", url.Values{"cl_ord_id": {"nineteen-characters"}}, "EGeneral:Invalid arguments:cl_ord_id"},
		{"market order", url.Values{"ordertype": {"market"}}, "EGeneral:Invalid arguments:ordertype"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := url.Values{"pair": {"XBTUSDT"}, "type": {"sell"}, "ordertype": {"limit"}, "price": {bid},
				"volume": {"0.1"}, "timeinforce": {"IOC"}}
			for k, v := range tc.params {
				p[k] = v
			}
			if tc.params.Has("oflags") {
				p.Del("timeinforce")
			}
			if got := f.post(t, "AddOrder", p, nil).err(); got != tc.want {
				t.Fatalf("%q, want %q", got, tc.want)
			}
		})
	}
	if got := f.srv.Placed(); len(got) != 0 {
		t.Fatalf("refused orders were placed: %v", got)
	}
}

func TestIDs_AreKrakensShapeAndDifferPerServer(t *testing.T) {
	a, b := newFixture(t), newFixture(t)
	a.srv.mu.Lock()
	x := a.srv.newTxid('O')
	a.srv.mu.Unlock()
	b.srv.mu.Lock()
	y := b.srv.newTxid('O')
	b.srv.mu.Unlock()
	for _, id := range []string{x, y} {
		if len(id) != 19 || id[0] != 'O' || id[6] != '-' || id[12] != '-' {
			t.Fatalf("txid %q is not shaped like OABCDE-FGHIJ-KLMNOP", id)
		}
	}
	if x == y {
		t.Fatal("two servers issued the same txid")
	}
}

func TestCredentials_AreFreshAndBase64(t *testing.T) {
	k1, s1, err := NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	k2, s2, _ := NewCredentials()
	if k1 == k2 || s1 == s2 {
		t.Fatal("two calls made the same credentials")
	}
	if raw, err := base64.StdEncoding.DecodeString(s1); err != nil || len(raw) != 64 {
		t.Fatalf("secret is not 64 bytes of base64: %v", err)
	}
}

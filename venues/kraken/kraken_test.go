package kraken

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/kraken/krakenfake"
	"github.com/blockexec/blockexec/venues/sim"
	"github.com/blockexec/blockexec/venues/venuetest"
)

var d = venuetest.D

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

// rig is an adapter pointed at a fake over a sim venue.
type rig struct {
	clk         *clock.Virtual
	sim         *sim.Venue
	fake        *krakenfake.Server
	v           *Venue
	key, secret string
	logs        *venuetest.LogBuffer
}

type rigOption func(*Config, *krakenfake.Options)

func newRig(t *testing.T, opts ...rigOption) rig {
	t.Helper()
	m, err := sim.NewMarket(sim.MarketConfig{Seed: 3, Symbol: venuetest.Symbol, Base: "BTC", Quote: "USDT",
		StartPrice: d("63000"), Start: venuetest.T0.Add(-8 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewVirtual(venuetest.T0)
	sv, err := sim.New(m, clk, sim.Config{Name: "core", Share: 0.5, Instrument: xbtusdt})
	if err != nil {
		t.Fatal(err)
	}
	key, secret, err := krakenfake.NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	fo := krakenfake.Options{Venue: sv, APIKey: key, Secret: secret, Clock: clk}
	cfg := Config{Name: "kraken", APIKey: venues.NewSecret(key), Secret: venues.NewSecret(secret),
		HTTPClient: &http.Client{Timeout: 2 * time.Second}}
	for _, o := range opts {
		o(&cfg, &fo)
	}
	fake, err := krakenfake.New(fo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	cfg.BaseURL = fake.URL()
	logs := &venuetest.LogBuffer{}
	v, err := New(cfg, clk, zerolog.New(logs).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	return rig{clk: clk, sim: sv, fake: fake, v: v, key: key, secret: secret, logs: logs}
}

func TestSign_MatchesKrakensDocumentedExample(t *testing.T) {
	// docs.kraken.com, Spot REST Authentication: the example AddOrder.
	secret := "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
	key, err := base64Decode(secret)
	if err != nil {
		t.Fatal(err)
	}
	got := sign(key, "/0/private/AddOrder", "1616492376594",
		"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25")
	want := "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
	if got != want {
		t.Fatalf("API-Sign %s, Kraken documents %s", got, want)
	}
}

// rawPrivate sends one signed private request with the nonce given.
func rawPrivate(t *testing.T, r rig, method string, nonce int64) []byte {
	t.Helper()
	key, err := base64Decode(r.secret)
	if err != nil {
		t.Fatal(err)
	}
	n := strconv.FormatInt(nonce, 10)
	body := url.Values{"nonce": {n}}.Encode()
	path := "/0/private/" + method
	req, err := http.NewRequest(http.MethodPost, r.fake.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("API-Key", r.key)
	req.Header.Set("API-Sign", sign(key, path, n, body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFake_RefusesAReusedOrDecreasingNonce(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct {
		name  string
		nonce int64
		want  string
	}{
		{"first", 1000, `"error":[]`},
		{"reused", 1000, "EAPI:Invalid nonce"},
		{"decreasing", 999, "EAPI:Invalid nonce"},
		{"increasing", 1001, `"error":[]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawPrivate(t, r, "Balance", tc.nonce); !bytes.Contains(got, []byte(tc.want)) {
				t.Fatalf("nonce %d: %s, want %s", tc.nonce, got, tc.want)
			}
		})
	}
}

func TestNonce_ConcurrentCallsReachKrakenInOrder(t *testing.T) {
	// A clock that never moves: every nonce is drawn in the same microsecond.
	frozen := clock.NewVirtual(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	r := newRig(t, func(c *Config, _ *krakenfake.Options) { c.AuthClock = frozen })
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.v.Order(ctx, venuetest.Symbol, "nope-"+strconv.Itoa(i))
			if !errors.Is(err, venues.ErrUnknownOrder) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent lookup: %v", err)
	}
	if strings.Contains(r.logs.String(), "Invalid nonce") {
		t.Fatal("Kraken refused a nonce: nonces reached it out of order")
	}
}

func TestInstrument_FindsThePairByItsKrakenNames(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		symbols map[string]string
		symbol  string
		want    error
	}{
		{"XBT/USDT is BTCUSDT", nil, "BTCUSDT", nil},
		{"configured altname", map[string]string{"BTCUSDT": "XBTUSDT"}, "BTCUSDT", nil},
		{"configured under another name", map[string]string{"BITCOIN": "XBTUSDT"}, "BITCOIN", nil},
		{"configured pair Kraken does not list", map[string]string{"BTCUSDT": "XBTEUR"}, "BTCUSDT", venues.ErrUnknownSymbol},
		{"no pair", nil, "DOGEUSDT", venues.ErrUnknownSymbol},
		{"Kraken's own name is not the engine's", nil, "XBTUSDT", venues.ErrUnknownSymbol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(c *Config, _ *krakenfake.Options) { c.Symbols = tc.symbols })
			in, err := r.v.Instrument(ctx, tc.symbol)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || !venues.IsReject(err) {
					t.Fatalf("%s: %v, want %v", tc.symbol, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := market.Instrument{Symbol: tc.symbol, Base: "BTC", Quote: "USDT", Tick: d("0.1"),
				Step: d("0.00000001"), MinQty: d("0.00005"), MinNotional: d("0.5"), MakerFee: d("0.0025"),
				TakerFee: d("0.004")}
			if in.Symbol != want.Symbol || in.Base != want.Base || in.Quote != want.Quote || !in.Tick.Equal(want.Tick) ||
				!in.Step.Equal(want.Step) || !in.MinQty.Equal(want.MinQty) || !in.MinNotional.Equal(want.MinNotional) ||
				!in.MakerFee.Equal(want.MakerFee) || !in.TakerFee.Equal(want.TakerFee) {
				t.Fatalf("instrument %+v, want %+v", in, want)
			}
		})
	}
}

func TestInstrument_ConfiguredFeesSkipTradeVolume(t *testing.T) {
	r := newRig(t, func(c *Config, _ *krakenfake.Options) { c.MakerFee, c.TakerFee = d("0.0016"), d("0.0026") })
	in, err := r.v.Instrument(context.Background(), venuetest.Symbol)
	if err != nil {
		t.Fatal(err)
	}
	if !in.MakerFee.Equal(d("0.0016")) || !in.TakerFee.Equal(d("0.0026")) {
		t.Fatalf("fees %s/%s", in.MakerFee, in.TakerFee)
	}
	if strings.Contains(r.logs.String(), "TradeVolume") {
		t.Fatal("TradeVolume read although the fees are configured")
	}
}

func TestCanonicalAsset_TranslatesKrakensNames(t *testing.T) {
	for in, want := range map[string]string{"XBT": "BTC", "XXBT": "BTC", "XDG": "DOGE", "XXDG": "DOGE", "ZUSD": "USD",
		"XETH": "ETH", "USDT": "USDT", "ETH": "ETH", "SOL": "SOL", "ZEUR": "EUR", "XTZ": "XTZ"} {
		if got := canonicalAsset(in); got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
	for _, tc := range []struct {
		p    assetPair
		want string
	}{
		{assetPair{Wsname: "XBT/USDT", Base: "XXBT", Quote: "USDT"}, "BTCUSDT"},
		{assetPair{Wsname: "XDG/USD", Base: "XXDG", Quote: "ZUSD"}, "DOGEUSD"},
		{assetPair{Base: "XXBT", Quote: "ZEUR"}, "BTCEUR"},
		{assetPair{Wsname: "SOL/EUR", Base: "SOL", Quote: "ZEUR"}, "SOLEUR"},
	} {
		if _, _, got := tc.p.engineNames(); got != tc.want {
			t.Errorf("%+v → %s, want %s", tc.p, got, tc.want)
		}
	}
}

func TestFake_DerivesTheAltnameFromTheSim(t *testing.T) {
	r := newRig(t)
	if r.fake.Pair() != "XBTUSDT" {
		t.Fatalf("altname %s, want XBTUSDT", r.fake.Pair())
	}
}

func TestCheckKey_ReportsSkewAndAsksAboutWithdrawals(t *testing.T) {
	ctx := context.Background()
	// Kraken's clock reads the market clock of the fake: T0. Ours is 42 s
	// behind.
	ours := clock.NewVirtual(venuetest.T0.Add(-42 * time.Second))
	r := newRig(t, func(c *Config, _ *krakenfake.Options) { c.AuthClock = ours })
	rep, err := r.v.CheckKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Reachable || rep.Kind != "kraken" || rep.Venue != "kraken" || rep.ClockSkew != 42*time.Second {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.Permissions) != 0 || rep.CanWithdraw != nil || rep.Refusal() != nil {
		t.Fatalf("Kraken does not report permissions, the report says %+v", rep)
	}
	all := strings.Join(rep.Warnings, "\n")
	if !strings.Contains(all, "withdraw") || !strings.Contains(all, "42s") {
		t.Fatalf("warnings %q: want the withdraw reminder and the skew", rep.Warnings)
	}

	inSync := newRig(t, func(c *Config, _ *krakenfake.Options) { c.AuthClock = clock.NewVirtual(venuetest.T0) })
	rep, err = inSync.v.CheckKey(ctx)
	if err != nil || rep.ClockSkew != 0 || len(rep.Warnings) != 1 {
		t.Fatalf("in sync: %+v %v", rep, err)
	}
}

func TestCheckKey_WrongSecretIsAnAuthRefusal(t *testing.T) {
	_, other, err := krakenfake.NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *Config, _ *krakenfake.Options) { c.Secret = venues.NewSecret(other) })
	rep, err := r.v.CheckKey(context.Background())
	var re *venues.RejectError
	if !errors.As(err, &re) || re.Code != "AUTH" || rep.Reachable {
		t.Fatalf("%+v %v, want an AUTH refusal", rep, err)
	}
	for _, s := range []string{r.key, r.secret, other} {
		if strings.Contains(err.Error(), s) || strings.Contains(r.logs.String(), s[:12]) {
			t.Fatal("a credential reached the error or the logs")
		}
	}
}

func TestNew_RefusesBadConfigNamingTheFieldNotTheSecret(t *testing.T) {
	clk := clock.NewVirtual(venuetest.T0)
	good := Config{Name: "kraken", APIKey: venues.NewSecret("key-value-1234567890"),
		Secret: venues.NewSecret("c2VjcmV0LXZhbHVlLTEyMzQ1Njc4OTA=")}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "name"},
		{"no key", func(c *Config) { c.APIKey = venues.Secret{} }, "api_key"},
		{"no secret", func(c *Config) { c.Secret = venues.Secret{} }, "secret"},
		{"secret not base64", func(c *Config) { c.Secret = venues.NewSecret("not*base64*at*all-secret-value") }, "secret"},
		{"bad url", func(c *Config) { c.BaseURL = "ftp://example" }, "base_url"},
		{"fee in percent", func(c *Config) { c.TakerFee = d("0.26") }, "taker_fee"},
		{"negative fee", func(c *Config) { c.MakerFee = d("-0.001") }, "maker_fee"},
		{"empty altname", func(c *Config) { c.Symbols = map[string]string{"BTCUSDT": ""} }, "symbols"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			_, err := New(c, clk, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("%v, want an error naming %s", err, tc.field)
			}
			for _, s := range []string{"key-value", "c2VjcmV0", "not*base64"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("the error %q prints a credential", err)
				}
			}
		})
	}
	if _, err := New(good, clk, zerolog.Nop()); err != nil {
		t.Fatalf("a good config: %v", err)
	}
}

func TestAnswers_MalformedBodiesAreUnavailableNotPanics(t *testing.T) {
	bodies := []struct {
		name   string
		status int
		body   string
	}{
		{"not JSON", 200, "<html>cloudflare</html>"},
		{"truncated", 200, `{"error":[],"result":{"XBTUSDT":{"asks":[["63000.1","1.0",1]`},
		{"no result", 200, `{"error":[]}`},
		{"levels of the wrong shape", 200, `{"error":[],"result":{"XBTUSDT":{"asks":[[1]],"bids":[]}}}`},
		{"price not a number", 200, `{"error":[],"result":{"XBTUSDT":{"asks":[["abc","1",1]],"bids":[]}}}`},
		{"empty", 200, ``},
		{"5xx", 502, `{"error":["EService:Unavailable"]}`},
		{"busy", 200, `{"error":["EService:Busy"]}`},
	}
	for _, tc := range bodies {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/0/public/AssetPairs" {
					_, _ = io.WriteString(w, `{"error":[],"result":{"XBTUSDT":{"altname":"XBTUSDT","wsname":"XBT/USDT",`+
						`"base":"XXBT","quote":"USDT","pair_decimals":1,"lot_decimals":8,"tick_size":"0.1",`+
						`"ordermin":"0.00005","costmin":"0.5","status":"online"}}}`)
					return
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			v, err := New(Config{Name: "kraken", BaseURL: srv.URL, APIKey: venues.NewSecret("k"),
				Secret: venues.NewSecret("c2VjcmV0"), MakerFee: d("0.001"), TakerFee: d("0.002")},
				clock.NewVirtual(venuetest.T0), zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Book(context.Background(), venuetest.Symbol, 5)
			if !errors.Is(err, venues.ErrUnavailable) || venues.IsReject(err) {
				t.Fatalf("%v, want an error wrapping venues.ErrUnavailable", err)
			}
		})
	}
}

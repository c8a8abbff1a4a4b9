package coinbase

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/coinbase/coinbasefake"
	"github.com/blockexec/blockexec/venues/venuetest"
)

const goodProducts = `{"products":[{"product_id":"BTC-USDT","base_currency_id":"BTC","quote_currency_id":"USDT",
"price_increment":"0.01","base_increment":"0.00000001","base_min_size":"0.00000001","quote_min_size":"1",
"product_type":"SPOT"}]}`

// answering is an adapter whose venue answers each path with a fixed body.
func answering(t *testing.T, bodies map[string]string) *Venue {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(b))
	}))
	t.Cleanup(srv.Close)
	keyName, pemText, _, err := coinbasefake.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(Config{BaseURL: srv.URL, KeyName: venues.NewSecret(keyName), PrivateKey: venues.NewSecret(pemText),
		MakerFee: venuetest.D("0.004"), TakerFee: venuetest.D("0.006")}, clock.NewVirtual(venuetest.T0), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMalformedBodies_AreErrorsNotPanics(t *testing.T) {
	ctx := context.Background()
	sell := market.OrderRequest{ClientID: "c-1", Symbol: "BTCUSDT", Side: market.Sell, Price: venuetest.D("60000"),
		Qty: venuetest.D("0.1"), TIF: market.IOC}
	place := func(v *Venue) error { _, _, err := v.Place(ctx, sell); return err }
	cases := []struct {
		name   string
		bodies map[string]string
		call   func(*Venue) error
	}{
		{"products cut short", map[string]string{pathProducts: `{"products":[{"product_id":`},
			func(v *Venue) error { _, err := v.Instrument(ctx, "BTCUSDT"); return err }},
		{"products of the wrong type", map[string]string{pathProducts: `{"products":"BTC-USDT"}`},
			func(v *Venue) error { _, err := v.Instrument(ctx, "BTCUSDT"); return err }},
		{"an increment that is not a number", map[string]string{pathProducts: strings.Replace(goodProducts,
			`"0.01"`, `"one cent"`, 1)}, func(v *Venue) error { _, err := v.Instrument(ctx, "BTCUSDT"); return err }},
		{"a book that is HTML", map[string]string{pathProducts: goodProducts, pathBook: `<html>busy</html>`},
			func(v *Venue) error { _, err := v.Book(ctx, "BTCUSDT", 5); return err }},
		{"a trade without a time", map[string]string{pathProducts: goodProducts,
			pathProducts + "/BTC-USDT/ticker": `{"trades":[{"trade_id":"1","price":"1","size":"1"}]}`},
			func(v *Venue) error {
				_, err := v.Tape(ctx, "BTCUSDT", venuetest.T0.Add(-time.Minute), venuetest.T0)
				return err
			}},
		{"an order answer that is not JSON", map[string]string{pathProducts: goodProducts, pathOrders: `oops`}, place},
		{"an accepted order without an id", map[string]string{pathProducts: goodProducts,
			pathOrders: `{"success":true}`}, place},
		{"an accepted order that reads back broken", map[string]string{pathProducts: goodProducts,
			pathOrders:        `{"success":true,"success_response":{"order_id":"o-1"}}`,
			pathOrder + "o-1": `{"order":{"order_id":"o-1","side":"SELL","status":"MAYBE"}}`}, place},
		{"fills that add to less than the order", map[string]string{pathProducts: goodProducts,
			pathOrders:        `{"success":true,"success_response":{"order_id":"o-1"}}`,
			pathOrder + "o-1": `{"order":{"order_id":"o-1","product_id":"BTC-USDT","client_order_id":"c-1","side":"SELL","status":"FILLED","filled_size":"0.1"}}`,
			pathFills:         `{"fills":[{"trade_id":"t","order_id":"o-1","side":"SELL","price":"60000","size":"0.05","trade_time":"2024-10-01T08:00:00Z"}]}`},
			place},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(answering(t, tc.bodies))
			if err == nil {
				t.Fatal("no error")
			}
			// Unreadable means "state unknown" (for an order: maybe placed),
			// never a refusal.
			if !errors.Is(err, venues.ErrUnavailable) || venues.IsReject(err) {
				t.Fatalf("%v, want ErrUnavailable and no rejection", err)
			}
		})
	}
}

func TestRefusal_MapsCoinbasesFailureReasons(t *testing.T) {
	v := answering(t, nil)
	req := market.OrderRequest{ClientID: "c-1", Symbol: "BTCUSDT", Side: market.Buy, Price: venuetest.D("1"),
		Qty: venuetest.D("1"), TIF: market.PostOnly}
	cases := []struct {
		name, body string
		is         error
		code       string
	}{
		{"post-only would cross", `{"success":false,"failure_reason":"UNKNOWN_FAILURE_REASON","error_response":{"error":"INVALID_LIMIT_PRICE_POST_ONLY","new_order_failure_reason":"INVALID_LIMIT_PRICE_POST_ONLY"}}`,
			venues.ErrWouldTake, "INVALID_LIMIT_PRICE_POST_ONLY"},
		{"post-only in the preview reason only", `{"success":false,"error_response":{"error":"UNKNOWN_FAILURE_REASON","preview_failure_reason":"PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY"}}`,
			venues.ErrWouldTake, "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY"},
		{"duplicate client id", `{"success":false,"error_response":{"new_order_failure_reason":"DUPLICATE_CLIENT_ORDER_ID"}}`,
			venues.ErrDuplicateClientID, "DUPLICATE_CLIENT_ORDER_ID"},
		{"size off the increment", `{"success":false,"error_response":{"error":"INVALID_SIZE_PRECISION","message":"Too many decimals"}}`,
			nil, "INVALID_SIZE_PRECISION"},
		{"too small", `{"success":false,"error_response":{"error":"UNKNOWN_FAILURE_REASON","new_order_failure_reason":"UNKNOWN_FAILURE_REASON","preview_failure_reason":"PREVIEW_INVALID_BASE_SIZE_TOO_SMALL"}}`,
			nil, "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL"},
		{"no reason at all", `{"success":false}`, nil, "UNKNOWN_FAILURE_REASON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var res createdJSON
			if err := json.Unmarshal([]byte(tc.body), &res); err != nil {
				t.Fatal(err)
			}
			err := v.refusal(req, res)
			var re *venues.RejectError
			if !errors.As(err, &re) || re.Code != tc.code || !venues.IsReject(err) {
				t.Fatalf("%v, want a RejectError %s", err, tc.code)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("%v, want %v", err, tc.is)
			}
		})
	}
}

// FuzzDecode feeds arbitrary bodies to every decoder and converter of the
// adapter: errors are fine, panics are not.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{goodProducts, `{"order":{"order_id":"x","side":"BUY","status":"OPEN","filled_size":"1e3"}}`,
		`{"fills":[{"trade_id":"t","side":"SELL","price":"1","size":"2","size_in_quote":true,"trade_time":"2024-10-01T08:00:00Z"}]}`,
		`{"trades":[{"trade_id":"1","price":"5","size":"1","time":"2024-10-01T08:00:00.5Z"}]}`,
		`{"pricebook":{"bids":[{"price":"1","size":"2"}],"asks":[]}}`, `{"success":false,"error_response":null}`,
		`{"iso":"","epochMillis":"17"}`, `{"price":"1e99999999"}`} {
		f.Add([]byte(s))
	}
	v := &Venue{name: "coinbase", clientOf: map[string]string{}, orderOf: map[string]string{}}
	p := product{id: "BTC-USDT", base: "BTC", quote: "USDT"}
	req := market.OrderRequest{ClientID: "c", Symbol: "BTCUSDT", Side: market.Buy, TIF: market.IOC}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ps productsJSON
		if json.Unmarshal(b, &ps) == nil {
			for _, pj := range ps.Products {
				_, _ = toProduct(pj)
			}
			_, _ = matchProduct("BTCUSDT", ps.Products)
		}
		var env orderEnvelope
		if json.Unmarshal(b, &env) == nil && env.Order != nil {
			_, _ = toOrder("BTCUSDT", *env.Order)
		}
		var fs fillsJSON
		if json.Unmarshal(b, &fs) == nil {
			for _, fj := range fs.Fills {
				_, _ = v.toFill("BTCUSDT", p, "c", fj)
			}
		}
		var bj bookJSON
		if json.Unmarshal(b, &bj) == nil {
			_ = levels(bj.Pricebook.Bids, 5)
		}
		var cj createdJSON
		if json.Unmarshal(b, &cj) == nil && !cj.Success {
			if err := v.refusal(req, cj); !venues.IsReject(err) {
				t.Fatalf("a refusal that is not a rejection: %v", err)
			}
		}
		var tj timeJSON
		_ = json.Unmarshal(b, &tj)
		var trades tradesJSON
		_ = json.Unmarshal(b, &trades)
	})
}

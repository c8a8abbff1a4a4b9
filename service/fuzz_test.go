package service

import (
	"testing"

	"github.com/blockexec/blockexec/api"
)

// FuzzDecodeOrderRequest feeds any bytes to the strict decoder and what it
// accepts to the desk's field checks: neither may panic, a refusal is a
// 400 (413 over the limit) with a message, and what both accept is a spec
// the engine's own validation takes.
func FuzzDecodeOrderRequest(f *testing.F) {
	for _, seed := range []string{
		`{"client_order_id":"c-1","side":"sell","symbol":"BTCUSDT","quantity":"1","duration":"10m","max_participation":"0.1","slippage_band_bps":"50"}`,
		`{"client_order_id":"c-2","side":"buy","symbol":"BTCUSDT","quantity":2.5,"start":"2024-10-08T14:00:00Z","end":"2024-10-08T15:00:00Z","max_participation":0.2,"slippage_band_bps":25,"ceiling_price":"64000","venues":["alpha","beta"],"slice_interval":"30s"}`,
		`{"client_order_id":"c-3","side":"sell","symbol":"BTCUSDT","quantity":"1","strategy":"pov","duration":"1h","max_participation":"0.1","slippage_band_bps":"50","pov":{"rate":"0.05","min_rate":"0.01","max_rate":"0.1"}}`,
		`{"client_order_id":"c-4","side":"sell","symbol":"BTCUSDT","quantity":"1","strategy":"vwap","duration":"8h","max_participation":"0.1","slippage_band_bps":"50","volume_curve":["1","2","3"],"ac_lambda":"0.5","max_venue_share":"0.6","max_child_notional":"10000","floor_price":"60000"}`,
		`{"quantity":"1e3"}`, `{"quantity":-1}`, `{"quantity":"0"}`, `{"side":5}`, `{"colour":"red"}`,
		`{"end":"tomorrow"}`, `{"start":"2024-10-08T14:00:00Z","end":"2024-10-08T13:00:00Z","duration":"1h"}`,
		`{"venues":[""]}`, `{"pov":{"rate":"x"}}`, `{"volume_curve":[1,"2",null,true]}`, `{"floor_price":null}`,
		`[]`, `null`, `{}`, `{} {}`, `{"a":`, ``, `"string"`, `{"quantity":"99999999999999999999999999999999999999.9999999999999"}`,
		`{"quantity":"1","QUANTITY":"1000"}`, `{"quantity":"1","quantity":"2"}`, `{"venues":["a","a"]}`,
		`{"duration":"-1h"}`, `{"slice_interval":"9223372036854775807ns"}`, `{"quantity":"+.5"}`,
	} {
		f.Add([]byte(seed))
	}
	now := httpT0
	f.Fuzz(func(t *testing.T, body []byte) {
		var req api.OrderRequest
		if aerr := Decode(body, DefaultMaxBody, &req); aerr != nil {
			if aerr.Status != 400 && aerr.Status != 413 || aerr.Message == "" {
				t.Fatalf("decode refused with %d %q", aerr.Status, aerr.Message)
			}
			return
		}
		_, _ = requestHash(req)
		spec, aerr := specOf(req, now)
		if aerr != nil {
			if aerr.Status != 400 || aerr.Message == "" {
				t.Fatalf("specOf refused with %d %q", aerr.Status, aerr.Message)
			}
			return
		}
		// Submit checks the id first; the rest is the engine's to take.
		if orderIDPattern.MatchString(req.ClientOrderID) && (req.Strategy == "" || req.Strategy == "twap") {
			if err := spec.Validate(); err != nil {
				t.Fatalf("the desk accepted %s, the engine refuses it: %v", body, err)
			}
		}
	})
}

package settlement

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/blockexec/blockexec/bus"
)

// decodeSeeds are bodies the fast path reads and bodies it leaves to
// encoding/json.
var decodeSeeds = []string{
	`{"schema":"blockexec.fill.v1","parent_id":"p1","client_order_id":"p1-1-simA-0","order_id":"o1","venue":"simA","trade_id":"7","symbol":"BTCUSDT","side":"sell","price":"63000.10","qty":"0.12345","fee":"0.311","fee_asset":"USDT","liquidity":"taker","time":"2024-10-01T08:01:00.123456789Z"}`,
	` { "venue" : "simA" , "trade_id":"1" } `,
	`{}`,
	`{"venue":"sim\u0041","trade_id":"1"}`,
	`{"Venue":"simA"}`,
	`{"price":63000.1}`,
	`{"price":null,"qty":"1e-3"}`,
	`{"time":"2024-10-01 08:01:00Z"}`,
	`{"venue":"simA","venue":"simB"}`,
	`{"venue":"simA",}`,
	`{"venue":"é"}`,
	`{"extra":"x"}`,
	`[1]`,
	`{"venue":"simA"} x`,
}

// TestDecodeFillBody_SameAsEncodingJSON: wherever the fast path answers,
// it answers as encoding/json does.
func TestDecodeFillBody_SameAsEncodingJSON(t *testing.T) {
	for _, s := range decodeSeeds {
		checkDecode(t, []byte(s))
	}
	if _, ok := readFlatFill([]byte(decodeSeeds[0])); !ok {
		t.Error("the engine's own fill body is not read by the fast path")
	}
}

func FuzzDecodeFillBody(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkDecode)
}

func checkDecode(t *testing.T, data []byte) {
	var want bus.FillMsg
	wantErr := json.Unmarshal(data, &want)
	got, err := decodeFillBody(data)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%s: err %v, encoding/json %v", data, err, wantErr)
	}
	if err != nil {
		return
	}
	// Decimals compare by value and text; times by instant and zone offset.
	if got.Price.String() != want.Price.String() || got.Qty.String() != want.Qty.String() || got.Fee.String() != want.Fee.String() ||
		!got.Time.Equal(want.Time) || got.Time.Format(timeLayout) != want.Time.Format(timeLayout) {
		t.Fatalf("%s: got %+v, want %+v", data, got, want)
	}
	got.Price, got.Qty, got.Fee, got.Time = want.Price, want.Qty, want.Fee, want.Time
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %+v, want %+v", data, got, want)
	}
}

package kraken

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeAnswer feeds arbitrary bodies through the envelope and the
// decoders of every result shape: an answer is a result or an error, never
// a panic.
func FuzzDecodeAnswer(f *testing.F) {
	for _, seed := range []string{
		`{"error":[],"result":{"XBTUSDT":{"asks":[["63000.1","1.00000000",1727769600]],"bids":[["63000.0","2.5",1727769600]]}}}`,
		`{"error":[],"result":{"XBTUSDT":[["63000.1","0.10000000",1727769600.1234,"b","l","",40000001]],"last":"1727769600123400000"}}`,
		`{"error":[],"result":{"OABCDE-FGHIJ-KLMNOP":{"status":"closed","opentm":1727769600.5,"descr":{"pair":"XBTUSDT","type":"sell","price":"63000.0"},"vol":"0.5","vol_exec":"0.5","cost":"31500","trades":["TABCDE-FGHIJ-KLMNOP"]}}}`,
		`{"error":[],"result":{"trades":{"TABCDE-FGHIJ-KLMNOP":{"ordertxid":"OABCDE-FGHIJ-KLMNOP","pair":"XBTUSDT","time":1727769600.5,"type":"sell","price":"63000.0","vol":"0.5","fee":"126","trade_id":1,"maker":false}},"count":1}}`,
		`{"error":["EOrder:Post only order"]}`,
		`{"error":["WGeneral:Something"],"result":{}}`,
		`<html>502</html>`,
		`{"error":[],"result":null}`,
		`{"error":[],"result":{"XBTUSDT":{"asks":[[1]],"bids":[["x"]]}}}`,
		`{"error":[],"result":{"XBTUSDT":[[1e400,"1",-5]],"last":"x"}}`,
	} {
		f.Add(200, []byte(seed))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		res, kerr := parseEnvelope(status, body)
		if kerr != nil {
			_ = kerr.Error()
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(res, &m) == nil {
			for _, raw := range m {
				_, _, _ = decodeDepth(raw)
				var o orderInfo
				if json.Unmarshal(raw, &o) == nil {
					_, _ = unixTime(o.Opentm)
				}
				var tr tradeInfo
				if json.Unmarshal(raw, &tr) == nil {
					_, _ = unixTime(tr.Time)
				}
			}
			_, _, _ = decodeTrades(m, "XBTUSDT")
		}
	})
}

package client

import (
	"context"
	"net/http"
	"testing"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/clock"
)

// TestSubmitDetail_TellsWhetherAnEarlierAttemptMayHaveMadeTheOrder: a 200
// after an attempt that got a 5xx or no answer may be that attempt's
// order; after none, or after a 429 (refused before anything was done),
// the order was there before the call.
func TestSubmitDetail_TellsWhetherAnEarlierAttemptMayHaveMadeTheOrder(t *testing.T) {
	unavailable := func(w http.ResponseWriter) {
		writeError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "the engine is not serving"), "")
	}
	for _, tc := range []struct {
		name    string
		first   func(t *testing.T, w http.ResponseWriter) // nil: none before the answer
		status  int
		want    Submitted
		comment string
	}{
		{"a 200 at once", nil, http.StatusOK, Submitted{Attempts: 1}, "known before"},
		{"a 201 at once", nil, http.StatusCreated, Submitted{Created: true, Attempts: 1}, "made"},
		{"a 200 after a 429", func(_ *testing.T, w http.ResponseWriter) {
			writeError(w, api.Errorf(http.StatusTooManyRequests, api.CodeRateLimited, "slow down"), "0")
		}, http.StatusOK, Submitted{Attempts: 2}, "known before"},
		{"a 200 after a 503", func(_ *testing.T, w http.ResponseWriter) { unavailable(w) }, http.StatusOK,
			Submitted{Attempts: 2, EarlierAttempt: true}, "maybe ours"},
		{"a 200 after a dropped answer", drop, http.StatusOK, Submitted{Attempts: 2, EarlierAttempt: true}, "maybe ours"},
		{"a 201 after a 503", func(_ *testing.T, w http.ResponseWriter) { unavailable(w) }, http.StatusCreated,
			Submitted{Created: true, Attempts: 2, EarlierAttempt: true}, "made on the retry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, clock.NewVirtual(t0), func(n int, w http.ResponseWriter, _ *http.Request, _ []byte) {
				if n == 0 && tc.first != nil {
					tc.first(t, w)
					return
				}
				writeJSON(w, tc.status, order("o-1", "working"))
			})
			got, err := f.client(t, nil).SubmitDetail(context.Background(), sellOrder("o-1"))
			if err != nil {
				t.Fatal(err)
			}
			if got.Order.ID != "o-1" {
				t.Fatalf("order %q", got.Order.ID)
			}
			if got.Created != tc.want.Created || got.Attempts != tc.want.Attempts || got.EarlierAttempt != tc.want.EarlierAttempt {
				t.Fatalf("%+v, want %+v (%s)", got, tc.want, tc.comment)
			}
		})
	}
}

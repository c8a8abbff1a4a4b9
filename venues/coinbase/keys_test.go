package coinbase

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/coinbase/coinbasefake"
)

func TestCheckKey(t *testing.T) {
	cases := []struct {
		name                  string
		view, trade, transfer bool
		skew                  time.Duration
		refused               bool
		warn                  string
	}{
		{"a trading key is accepted", true, true, false, 0, false, ""},
		{"a key that can transfer is refused", true, true, true, 0, true, ""},
		{"a view-only key is warned about", true, false, false, 0, false, "cannot trade"},
		{"a skewed clock is reported", true, true, false, 30 * time.Second, false, "clock skew"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(_ *Config, o *coinbasefake.Options) { o.AuthClock = offsetClock{tc.skew} })
			r.fake.SetKeyPermissions(tc.view, tc.trade, tc.transfer)
			rep, err := r.v.CheckKey(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Reachable || rep.Kind != "coinbase" || rep.Venue != "coinbase" || rep.CanWithdraw == nil ||
				*rep.CanWithdraw != tc.transfer || slices.Contains(rep.Permissions, "can_transfer") != tc.transfer {
				t.Fatalf("report %+v", rep)
			}
			if refused := errors.Is(rep.Refusal(), venues.ErrKeyCanWithdraw); refused != tc.refused {
				t.Fatalf("refusal %v, want refused=%v", rep.Refusal(), tc.refused)
			}
			if d := (rep.ClockSkew - tc.skew).Abs(); d > time.Second {
				t.Fatalf("skew %s, want about %s", rep.ClockSkew, tc.skew)
			}
			warned := strings.Join(rep.Warnings, "; ")
			if (tc.warn == "") != (warned == "") || !strings.Contains(warned, tc.warn) {
				t.Fatalf("warnings %q, want %q", warned, tc.warn)
			}
		})
	}
}

func TestCheckKey_WrongKeyIsAnAuthRefusal(t *testing.T) {
	_, other, _, err := coinbasefake.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *Config, _ *coinbasefake.Options) { c.PrivateKey = venues.NewSecret(other) })
	rep, err := r.v.CheckKey(context.Background())
	var re *venues.RejectError
	if !errors.As(err, &re) || re.Code != "AUTH" || rep.Reachable {
		t.Fatalf("%+v %v", rep, err)
	}
}

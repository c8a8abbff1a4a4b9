package binance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/adshao/go-binance/v2/common"

	"github.com/blockexec/blockexec/venues"
)

// Binance's default limits, used until exchangeInfo states them.
const (
	defaultWeightLimit1m = 6000
	defaultOrderLimit10s = 100
	headroom             = 0.9 // stop sending above 90 % of a window's budget
)

// callInfo is what the transport saw of one call's answer: what the
// client library does not return with its errors.
type callInfo struct {
	status     int
	retryAfter time.Duration
	weight1m   int64 // X-MBX-USED-WEIGHT-1M, -1 when absent
	orders10s  int64 // X-MBX-ORDER-COUNT-10S, -1 when absent
}

type callKey struct{}

// transport records each answer's status and limit headers into the
// callInfo its request carries.
type transport struct{ next http.RoundTripper }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(req)
	info, _ := req.Context().Value(callKey{}).(*callInfo)
	if err != nil || info == nil {
		return res, err
	}
	info.status = res.StatusCode
	if n, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && n >= 0 {
		info.retryAfter = time.Duration(n) * time.Second
	}
	info.weight1m = headerInt(res.Header, "X-Mbx-Used-Weight-1m")
	info.orders10s = headerInt(res.Header, "X-Mbx-Order-Count-10s")
	return res, nil
}

func headerInt(h http.Header, name string) int64 {
	n, err := strconv.ParseInt(h.Get(name), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// call runs one request with the adapter's rules around it: it refuses to
// send while rate limited or banned, waits for the next window when the
// used weight or order count nears its limit, resynchronises the clock
// once on −1021, and maps the answer onto the engine's errors.
func (v *Venue) call(ctx context.Context, placing bool, fn func(ctx context.Context) error) error {
	if err := v.gate(ctx, placing); err != nil {
		return err
	}
	err := v.once(ctx, fn)
	if errors.Is(err, errClockSkew) {
		info := &callInfo{}
		v.callMu.Lock()
		_, serr := v.c.NewSetServerTimeService().Do(context.WithValue(ctx, callKey{}, info))
		v.callMu.Unlock()
		if serr != nil {
			return fmt.Errorf("binance %s: resync clock: %w", v.cfg.Name, v.mapErr(serr, info))
		}
		v.log.Info().Int64("offset_ms", v.timeOffset()).Msg("clock resynchronised with the server after -1021")
		err = v.once(ctx, fn)
	}
	return err
}

func (v *Venue) once(ctx context.Context, fn func(ctx context.Context) error) error {
	info := &callInfo{weight1m: -1, orders10s: -1}
	// go-binance's client records the used weight and time offset in
	// fields of its own without a lock: one call at a time.
	v.callMu.Lock()
	err := fn(context.WithValue(ctx, callKey{}, info))
	v.callMu.Unlock()
	v.mu.Lock()
	if info.weight1m >= 0 {
		v.weight1m, v.weightAt = info.weight1m, v.clk.Now()
	}
	if info.orders10s >= 0 {
		v.orders10s, v.ordersAt = info.orders10s, v.clk.Now()
	}
	v.mu.Unlock()
	return v.mapErr(err, info)
}

// gate holds a request back while the venue is rate limited or banned,
// and before a window's budget (request weight, or order count for an
// order) passes 90 %: the adapter then stays away until the next window.
// It never waits itself: the engine's other venues must not wait with
// this one, and a venue that answers "unavailable" sits out.
func (v *Venue) gate(_ context.Context, placing bool) error {
	now := v.clk.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	// stop returns the end of the window when its budget is nearly spent.
	stop := func(window time.Duration, used, limit int64, at time.Time) (time.Time, bool) {
		next := at.Truncate(window).Add(window)
		return next, float64(used) >= headroom*float64(limit) && now.Before(next)
	}
	if next, near := stop(time.Minute, v.weight1m, v.weightLimit, v.weightAt); near && next.After(v.until) {
		v.until, v.untilWhy = next, "request weight near the limit"
		v.log.Warn().Int64("used", v.weight1m).Int64("limit", v.weightLimit).Time("until", next).
			Msg("request weight near the limit; sending nothing until the next minute")
	}
	if now.Before(v.until) {
		return fmt.Errorf("binance %s: %w: %s until %s", v.cfg.Name, venues.ErrUnavailable, v.untilWhy, v.until.Format(time.RFC3339))
	}
	if next, near := stop(10*time.Second, v.orders10s, v.orderLimit, v.ordersAt); placing && near {
		v.log.Warn().Int64("used", v.orders10s).Int64("limit", v.orderLimit).Time("until", next).
			Msg("order count near the limit; placing nothing until the next 10 s")
		return fmt.Errorf("binance %s: %w: order count near the limit until %s", v.cfg.Name, venues.ErrUnavailable,
			next.Format(time.RFC3339))
	}
	return nil
}

var errClockSkew = errors.New("timestamp outside the receive window")

// mapErr turns the client's errors into the engine's. A definite refusal
// is a *venues.RejectError (or wraps a venues sentinel); anything that
// leaves the outcome unknown wraps venues.ErrUnavailable.
func (v *Venue) mapErr(err error, info *callInfo) error {
	if err == nil {
		return nil
	}
	if info.status == http.StatusTooManyRequests || info.status == http.StatusTeapot {
		return v.limited(info.status, info.retryAfter)
	}
	var api *common.APIError
	if !errors.As(err, &api) || !api.IsValid() || info.status >= 500 {
		// A 5xx, a timeout, an unreadable answer: the order may exist.
		return fmt.Errorf("binance %s: %w: outcome unknown (HTTP %d): %s", v.cfg.Name, venues.ErrUnavailable, info.status,
			describe(err))
	}
	msg, reason := api.Message, fmt.Sprintf("%d %s", api.Code, api.Message)
	switch api.Code {
	case -1003, -1015:
		return v.limited(http.StatusTooManyRequests, info.retryAfter)
	case -1021:
		return errClockSkew
	case -2010:
		switch {
		case strings.Contains(msg, "immediately match"):
			return fmt.Errorf("%w: %w", &venues.RejectError{Venue: v.cfg.Name, Code: "WOULD_TAKE", Reason: reason}, venues.ErrWouldTake)
		case strings.Contains(msg, "Duplicate"):
			return fmt.Errorf("%w: %w", &venues.RejectError{Venue: v.cfg.Name, Code: "DUPLICATE", Reason: reason}, venues.ErrDuplicateClientID)
		}
		return &venues.RejectError{Venue: v.cfg.Name, Code: "NEW_ORDER_REJECTED", Reason: reason}
	case -1013, -1111, -1100, -1102, -1104, -1106, -1115, -1116, -1117, -1131:
		return &venues.RejectError{Venue: v.cfg.Name, Code: "FILTER", Reason: reason}
	case -2011, -2013:
		return fmt.Errorf("binance %s: %w: %s", v.cfg.Name, venues.ErrUnknownOrder, reason)
	case -1121:
		return fmt.Errorf("binance %s: %w: %s", v.cfg.Name, venues.ErrUnknownSymbol, reason)
	case -1022, -2014, -2015:
		return &venues.RejectError{Venue: v.cfg.Name, Code: "AUTH", Reason: reason + ": check the key, its secret and its permissions"}
	case -1000, -1001, -1006, -1007, -1008:
		return fmt.Errorf("binance %s: %w: outcome unknown: %s", v.cfg.Name, venues.ErrUnavailable, reason)
	}
	return &venues.RejectError{Venue: v.cfg.Name, Code: strconv.FormatInt(api.Code, 10), Reason: msg}
}

// describe prints an error without the request URL a *url.Error carries:
// a signed URL holds the signature and the timestamp.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// limited records a 429 (rate limited) or 418 (banned) and how long to
// stay away: Retry-After, or a minute when the venue gives none.
func (v *Venue) limited(status int, retry time.Duration) error {
	if retry <= 0 {
		retry = time.Minute
	}
	what := "rate limited"
	if status == http.StatusTeapot {
		what = "IP banned"
	}
	until := v.clk.Now().Add(retry)
	v.mu.Lock()
	if until.After(v.until) {
		v.until, v.untilWhy = until, what
	}
	v.mu.Unlock()
	v.log.Warn().Int("status", status).Dur("retry_after", retry).Msgf("%s by the venue; sending nothing until then", what)
	return fmt.Errorf("binance %s: %w: %s (HTTP %d) for %s", v.cfg.Name, venues.ErrUnavailable, what, status, retry)
}

// timeOffset is the client's offset from the server's clock, in ms.
func (v *Venue) timeOffset() int64 {
	v.callMu.Lock()
	defer v.callMu.Unlock()
	return v.c.TimeOffset
}

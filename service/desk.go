// Package service is the engine as a service for quant funds: the
// operations on parent orders (submit, list, status, pause, resume, amend,
// cancel, fills, events, kill) behind a signed HTTP JSON API and the same
// operations as a NATS micro service. Desk holds the operations; the HTTP
// and NATS layers decode, authenticate and encode around it.
package service

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/market"
)

// Engine is what the service needs of a serving engine.
type Engine interface {
	Submit(ctx context.Context, s engine.ParentSpec) (engine.Status, error)
	Pause(ctx context.Context, id string) (engine.Status, error)
	Resume(ctx context.Context, id string) (engine.Status, error)
	Cancel(ctx context.Context, id string) (engine.Status, error)
	Amend(ctx context.Context, id string, a engine.Amendment) (engine.Status, error)
	KillAll(ctx context.Context, reason string) ([]engine.Status, error)
	ReleaseKill() engine.KillState
	KillState() engine.KillState
	Status(id string) (engine.Status, bool)
	Statuses() []engine.Status
	Adopt(ctx context.Context, s engine.ParentSpec, cp engine.Checkpoint) (engine.Status, error)
}

// Schedules builds a request's strategy schedule (nil for the engine's
// TWAP); its error names what is wrong with the request's strategy fields.
type Schedules interface {
	Schedule(req api.OrderRequest, spec engine.ParentSpec) (engine.Schedule, error)
}

// Fills lists a parent's fills as the ledger holds them.
type Fills interface {
	FillMsgs(ctx context.Context, parentID string) ([]bus.FillMsg, error)
}

// Events follows a parent's events from a sequence number (1 is the
// first) until ctx ends; the channel closes when it stops.
type Events interface {
	Follow(ctx context.Context, parentID string, fromSeq int64) (<-chan bus.EventMsg, error)
}

// IDs tells whether an order id was used before this process (in the
// ledger, or on the bus): ids stay unique for ever, they key the
// de-duplication of events.
type IDs interface {
	Used(ctx context.Context, id string) (bool, error)
}

// Caller is who makes a request: the API key's client, and whether the
// key may act on every client's orders (scope admin).
type Caller struct {
	Client string
	Admin  bool
}

// Desk is the service's operations. Safe for concurrent use.
type Desk struct {
	eng       Engine
	schedules Schedules
	fills     Fills
	events    Events
	ids       IDs
	clk       clock.Clock

	mu     sync.Mutex
	orders map[string]owned // by order id
}

// owned is who submitted an order and the request it was made from.
type owned struct {
	client string
	hash   [32]byte
	// ready is closed once the engine has answered the submission: a
	// duplicate that arrives meanwhile waits for the answer.
	ready chan struct{}
}

// NewDesk returns the operations over a serving engine.
func NewDesk(eng Engine, schedules Schedules, fills Fills, events Events, ids IDs, clk clock.Clock) *Desk {
	return &Desk{eng: eng, schedules: schedules, fills: fills, events: events, ids: ids, clk: clk, orders: map[string]owned{}}
}

// defaultStrategy is an order's strategy when the request names none.
const defaultStrategy = "twap"

var orderIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Submit makes an order from req, once: the same client_order_id with the
// same request returns the order made the first time (created false);
// with another request, or from another client, it is a conflict. A
// refused request creates nothing.
func (d *Desk) Submit(ctx context.Context, c Caller, req api.OrderRequest) (api.Order, bool, *api.Error) {
	if !orderIDPattern.MatchString(req.ClientOrderID) {
		return api.Order{}, false, api.BadField("client_order_id",
			"want 1 to 64 letters, digits, '-' or '_' (it becomes the order's id, part of bus subjects and ledger keys)")
	}
	hash, err := requestHash(req)
	if err != nil {
		return api.Order{}, false, api.Errorf(http.StatusInternalServerError, api.CodeInternal, "hash the request: %v", err)
	}
	d.mu.Lock()
	prev, seen := d.orders[req.ClientOrderID]
	d.mu.Unlock()
	if seen {
		return d.again(ctx, c, req, hash, prev)
	}
	if used, err := d.ids.Used(ctx, req.ClientOrderID); err != nil {
		return api.Order{}, false, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "check the id: %v", err)
	} else if used {
		return api.Order{}, false, api.Errorf(http.StatusConflict, api.CodeConflict,
			"client_order_id %q was used before (it is in the ledger or on the bus); ids are unique for ever", req.ClientOrderID)
	}
	now := d.clk.Now()
	spec, aerr := specOf(req, now)
	if aerr != nil {
		return api.Order{}, false, aerr
	}
	if spec.Schedule, err = d.schedules.Schedule(req, spec); err != nil {
		return api.Order{}, false, api.BadField("strategy", "%v", err)
	}
	if spec.Origin, err = json.Marshal(origin{Client: c.Client, Request: req, Submitted: now}); err != nil {
		return api.Order{}, false, api.Errorf(http.StatusInternalServerError, api.CodeInternal, "encode the origin: %v", err)
	}
	// Hold the id while the engine accepts, so a concurrent duplicate waits
	// for the answer instead of racing it.
	d.mu.Lock()
	if prev, seen := d.orders[req.ClientOrderID]; seen {
		d.mu.Unlock()
		return d.again(ctx, c, req, hash, prev)
	}
	ready := make(chan struct{})
	d.orders[req.ClientOrderID] = owned{client: c.Client, hash: hash, ready: ready}
	d.mu.Unlock()
	defer close(ready)
	// Not cancelled with the request: once the engine has the command it
	// may accept the order whatever ctx does, and an order accepted after
	// its reservation was dropped would belong to no one.
	st, err := d.eng.Submit(context.WithoutCancel(ctx), spec)
	if err != nil {
		d.mu.Lock()
		delete(d.orders, req.ClientOrderID)
		d.mu.Unlock()
		return api.Order{}, false, engineError(err)
	}
	return d.order(st), true, nil
}

// Has reports whether the engine has the order (working, or ended with
// its status kept).
func (d *Desk) Has(id string) bool {
	_, ok := d.eng.Status(id)
	return ok
}

// origin is what an order's checkpoint keeps of its submission: enough to
// build its spec and schedule again, and to answer a resubmission, after a
// restart.
type origin struct {
	Client    string           `json:"client"`
	Request   api.OrderRequest `json:"request"`
	Submitted time.Time        `json:"submitted"`
}

// Recover takes back the orders of a previous run of the service from
// their checkpoints: each becomes the engine's again (a working one goes on
// from where it stood) and stays its client's, with its request, so a
// resubmission gets the same order. It returns how many it took back and
// why any other could not be.
func (d *Desk) Recover(ctx context.Context, cps []engine.Checkpoint) (int, []error) {
	var errs []error
	n := 0
	for _, cp := range cps {
		var o origin
		if err := json.Unmarshal(cp.Origin, &o); err != nil || o.Request.ClientOrderID != cp.ParentID {
			errs = append(errs, fmt.Errorf("order %s: its checkpoint holds no request this service made (%v)", cp.ParentID, err))
			continue
		}
		spec, aerr := specOf(o.Request, o.Submitted)
		if aerr != nil {
			errs = append(errs, fmt.Errorf("order %s: %s", cp.ParentID, aerr.Message))
			continue
		}
		var err error
		if spec.Schedule, err = d.schedules.Schedule(o.Request, spec); err != nil {
			errs = append(errs, fmt.Errorf("order %s: strategy: %w", cp.ParentID, err))
			continue
		}
		spec.Origin = cp.Origin
		hash, err := requestHash(o.Request)
		if err != nil {
			errs = append(errs, fmt.Errorf("order %s: %w", cp.ParentID, err))
			continue
		}
		if _, err := d.eng.Adopt(ctx, spec, cp); err != nil {
			errs = append(errs, fmt.Errorf("order %s: %w", cp.ParentID, err))
			continue
		}
		ready := make(chan struct{})
		close(ready)
		d.mu.Lock()
		d.orders[cp.ParentID] = owned{client: o.Client, hash: hash, ready: ready}
		d.mu.Unlock()
		n++
	}
	return n, errs
}

// again answers a submission whose id is taken: a conflict unless it is
// the same client's same request, which gets the order made the first
// time, once the engine has answered that one; if the engine refused it,
// this one is tried afresh (and most likely refused the same way).
func (d *Desk) again(ctx context.Context, c Caller, req api.OrderRequest, hash [32]byte, prev owned) (api.Order, bool, *api.Error) {
	if prev.client != c.Client || prev.hash != hash {
		return api.Order{}, false, api.Errorf(http.StatusConflict, api.CodeConflict,
			"client_order_id %q was used for another order; use a new id", req.ClientOrderID)
	}
	select {
	case <-prev.ready:
	default:
		select {
		case <-prev.ready:
		case <-ctx.Done():
			return api.Order{}, false, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable,
				"the first submission of %q is still being accepted: %v", req.ClientOrderID, ctx.Err())
		}
	}
	if st, ok := d.eng.Status(req.ClientOrderID); ok {
		return d.order(st), false, nil
	}
	d.mu.Lock()
	cur, held := d.orders[req.ClientOrderID]
	d.mu.Unlock()
	if held && cur.ready == prev.ready {
		return api.Order{}, false, api.Errorf(http.StatusInternalServerError, api.CodeInternal,
			"order %q was accepted but the engine has no status of it", req.ClientOrderID)
	}
	return d.Submit(ctx, c, req)
}

// requestHash identifies a request's content: its canonical JSON, with
// the default strategy written out and times in UTC, so a resubmit that
// leaves out "twap" or writes the same instant in another offset is the
// same request.
func requestHash(req api.OrderRequest) ([32]byte, error) {
	if req.Strategy == "" {
		req.Strategy = defaultStrategy
	}
	for _, t := range []**time.Time{&req.Start, &req.End} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	b, err := json.Marshal(req)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// Get returns an order the caller may see.
func (d *Desk) Get(c Caller, id string) (api.Order, *api.Error) {
	if aerr := d.may(c, id); aerr != nil {
		return api.Order{}, aerr
	}
	st, ok := d.eng.Status(id)
	if !ok {
		return api.Order{}, notFound(id)
	}
	return d.order(st), nil
}

// List returns the orders the caller may see, in one state or all.
func (d *Desk) List(c Caller, state string) (api.OrderList, *api.Error) {
	if state != "" {
		if _, ok := engine.ParseState(state); !ok {
			return api.OrderList{}, api.BadField("state", "%q is not a state: accepted, working, paused, done, cancelled, failed", state)
		}
	}
	out := api.OrderList{Orders: []api.Order{}}
	for _, st := range d.eng.Statuses() {
		if (state == "" || st.State.String() == state) && d.may(c, st.ParentID) == nil {
			out.Orders = append(out.Orders, d.order(st))
		}
	}
	return out, nil
}

// Pause, Resume and Cancel act on an order the caller owns.
func (d *Desk) Pause(ctx context.Context, c Caller, id string) (api.Order, *api.Error) {
	return d.act(ctx, c, id, d.eng.Pause)
}

// Resume lets a paused order work again.
func (d *Desk) Resume(ctx context.Context, c Caller, id string) (api.Order, *api.Error) {
	return d.act(ctx, c, id, d.eng.Resume)
}

// Cancel ends an order: nothing more is placed.
func (d *Desk) Cancel(ctx context.Context, c Caller, id string) (api.Order, *api.Error) {
	return d.act(ctx, c, id, d.eng.Cancel)
}

func (d *Desk) act(ctx context.Context, c Caller, id string, fn func(context.Context, string) (engine.Status, error)) (api.Order, *api.Error) {
	if aerr := d.may(c, id); aerr != nil {
		return api.Order{}, aerr
	}
	st, err := fn(ctx, id)
	if err != nil {
		return api.Order{}, engineError(err)
	}
	return d.order(st), nil
}

// Amend changes an order's terms, checked as a submission is.
func (d *Desk) Amend(ctx context.Context, c Caller, id string, a api.Amendment) (api.Order, *api.Error) {
	if aerr := d.may(c, id); aerr != nil {
		return api.Order{}, aerr
	}
	st, ok := d.eng.Status(id)
	if !ok {
		return api.Order{}, notFound(id)
	}
	var am engine.Amendment
	switch {
	case a.FloorPrice != nil && st.Side == market.Buy:
		return api.Order{}, api.BadField("floor_price", "a buy order has a ceiling_price, not a floor")
	case a.CeilingPrice != nil && st.Side == market.Sell:
		return api.Order{}, api.BadField("ceiling_price", "a sell order has a floor_price, not a ceiling")
	case a.FloorPrice != nil:
		am.LimitPrice = a.FloorPrice
	case a.CeilingPrice != nil:
		am.LimitPrice = a.CeilingPrice
	}
	if am.LimitPrice != nil && am.LimitPrice.Sign() < 0 {
		return api.Order{}, api.BadField(limitField(st.Side), "must be >= 0 (0 removes it), got %s", am.LimitPrice)
	}
	am.BandBps, am.MaxParticipation, am.End = a.SlippageBandBps, a.MaxParticipation, a.End
	if am == (engine.Amendment{}) {
		return api.Order{}, api.BadField("", "nothing to amend: give floor_price or ceiling_price, slippage_band_bps, max_participation or end")
	}
	st, err := d.eng.Amend(ctx, id, am)
	if err != nil {
		return api.Order{}, engineError(err)
	}
	return d.order(st), nil
}

// FillsOf returns the ledger's fills of an order the caller may see.
func (d *Desk) FillsOf(ctx context.Context, c Caller, id string) (api.FillList, *api.Error) {
	if _, aerr := d.Get(c, id); aerr != nil {
		return api.FillList{}, aerr
	}
	fs, err := d.fills.FillMsgs(ctx, id)
	if err != nil {
		return api.FillList{}, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "read the ledger: %v", err)
	}
	if fs == nil {
		fs = []bus.FillMsg{}
	}
	return api.FillList{Fills: fs}, nil
}

// Follow streams an order's events from a sequence number (1: from its
// first) until ctx ends.
func (d *Desk) Follow(ctx context.Context, c Caller, id string, fromSeq int64) (<-chan bus.EventMsg, *api.Error) {
	if _, aerr := d.Get(c, id); aerr != nil {
		return nil, aerr
	}
	ch, err := d.events.Follow(ctx, id, max(fromSeq, 1))
	if err != nil {
		return nil, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "follow the events: %v", err)
	}
	return ch, nil
}

// Kill cancels every order of every client. Admin only.
func (d *Desk) Kill(ctx context.Context, c Caller, reason string) (api.KillResult, *api.Error) {
	if !c.Admin {
		return api.KillResult{}, api.Errorf(http.StatusForbidden, api.CodeForbidden, "the kill switch needs the admin scope")
	}
	if reason == "" {
		reason = "kill switch by " + c.Client
	}
	sts, err := d.eng.KillAll(ctx, reason)
	if err != nil && len(sts) == 0 {
		return api.KillResult{}, engineError(err)
	}
	out := api.KillResult{Cancelled: []api.Order{}, KillSwitch: killState(d.eng.KillState())}
	for _, st := range sts {
		out.Cancelled = append(out.Cancelled, d.order(st))
	}
	if err != nil {
		// Every order was cancelled; some of their last events or fills
		// could not be published. Say so, with what was cancelled.
		out.Errors = append(out.Errors, err.Error())
	}
	return out, nil
}

// ReleaseKill releases the kill switch: orders may be submitted again.
// Admin only.
func (d *Desk) ReleaseKill(_ context.Context, c Caller) (api.KillState, *api.Error) {
	if !c.Admin {
		return api.KillState{}, api.Errorf(http.StatusForbidden, api.CodeForbidden, "releasing the kill switch needs the admin scope")
	}
	return killState(d.eng.ReleaseKill()), nil
}

// KillState says whether the kill switch is engaged.
func (d *Desk) KillState() api.KillState { return killState(d.eng.KillState()) }

func killState(k engine.KillState) api.KillState {
	out := api.KillState{Engaged: k.Engaged, Reason: k.Reason}
	if k.Engaged {
		since := k.Since.UTC()
		out.Since = &since
	}
	return out
}

// may says whether the caller may see or act on an order: its own, or any
// for an admin. An order of another client is "not found", so ids do not
// leak between clients.
func (d *Desk) may(c Caller, id string) *api.Error {
	d.mu.Lock()
	o, ok := d.orders[id]
	d.mu.Unlock()
	if ok && (c.Admin || o.client == c.Client) {
		return nil
	}
	if !ok && c.Admin {
		if _, exists := d.eng.Status(id); exists {
			return nil
		}
	}
	return notFound(id)
}

func notFound(id string) *api.Error {
	return api.Errorf(http.StatusNotFound, api.CodeNotFound, "no order %q", id)
}

func limitField(side market.Side) string {
	if side == market.Buy {
		return "ceiling_price"
	}
	return "floor_price"
}

// engineError maps the engine's refusals onto the API's.
func engineError(err error) *api.Error {
	var se *engine.SpecError
	switch {
	case errors.As(err, &se):
		// The engine names fields as the API does, but for the parent as
		// a whole and its id.
		field := se.Field
		switch field {
		case "parent":
			field = ""
		case "id":
			field = "client_order_id"
		}
		return api.BadField(field, "%s", se.Msg)
	case errors.Is(err, engine.ErrUnknownParent):
		return api.Errorf(http.StatusNotFound, api.CodeNotFound, "%v", err)
	case errors.Is(err, engine.ErrParentEnded), errors.Is(err, engine.ErrDuplicateParent):
		return api.Errorf(http.StatusConflict, api.CodeConflict, "%v", err)
	case errors.Is(err, engine.ErrKilled):
		return api.Errorf(http.StatusServiceUnavailable, api.CodeKilled, "%v", err)
	case errors.Is(err, engine.ErrNotServing), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "%v", err)
	}
	return api.Errorf(http.StatusInternalServerError, api.CodeInternal, "%v", err)
}

// order is an engine status as the API shows it.
func (d *Desk) order(st engine.Status) api.Order {
	d.mu.Lock()
	o := d.orders[st.ParentID]
	d.mu.Unlock()
	venues := append([]string{}, st.VenueNames...)
	sort.Strings(venues)
	return api.Order{
		ID: st.ParentID, ClientOrderID: st.ParentID, Client: o.client, State: st.State.String(), Reason: st.Reason,
		Side: st.Side.String(), Symbol: st.Symbol, Strategy: st.Strategy, Quantity: st.Qty, FilledQuantity: st.Filled,
		UnfilledQuantity: st.Unfilled(), PendingQuantity: st.Pending, Target: st.Target, AveragePrice: st.AvgPrice().Round(8),
		ArrivalPrice: st.ArrivalPrice, ShortfallBps: st.ShortfallBps().Round(4), MarketVWAP: st.MarketVWAP,
		MaxParticipation: st.MaxParticipation, SlippageBandBps: st.BandBps, LimitPrice: st.LimitPrice, Fees: st.Fees,
		OtherFees: st.OtherFees, ChildOrders: st.ChildOrders, Fills: st.Fills, Rejections: st.Rejections,
		Venues: venues, Start: st.Start, End: st.End, Updated: st.Updated,
	}
}

// specOf checks a request field by field and makes the engine's spec of
// it (without its schedule).
func specOf(r api.OrderRequest, now time.Time) (engine.ParentSpec, *api.Error) {
	s := engine.ParentSpec{ID: r.ClientOrderID, Symbol: r.Symbol, Qty: r.Quantity, Strategy: r.Strategy,
		MaxParticipation: r.MaxParticipation, BandBps: r.SlippageBandBps, Venues: r.Venues}
	switch r.Side {
	case "sell":
		s.Side = market.Sell
	case "buy":
		s.Side = market.Buy
	default:
		return s, api.BadField("side", "want buy or sell, got %q", r.Side)
	}
	if s.Strategy == "" {
		s.Strategy = defaultStrategy
	}
	one := decimal.NewFromInt(1)
	switch {
	case r.Symbol == "":
		return s, api.BadField("symbol", "missing: the symbol to trade, e.g. BTCUSDT")
	case r.Quantity.Sign() <= 0:
		return s, api.BadField("quantity", "must be > 0, got %s", r.Quantity)
	case s.Strategy != "twap" && s.Strategy != "vwap" && s.Strategy != "pov" && s.Strategy != "ac":
		return s, api.BadField("strategy", "%q is not a strategy: twap, vwap, pov or ac", r.Strategy)
	case r.MaxParticipation.Sign() <= 0 || r.MaxParticipation.GreaterThan(one):
		return s, api.BadField("max_participation", "must be in (0, 1] (0.10 is 10 %% of the volume), got %s", r.MaxParticipation)
	case r.SlippageBandBps.Sign() <= 0:
		return s, api.BadField("slippage_band_bps", "must be > 0 (basis points around the arrival price), got %s", r.SlippageBandBps)
	case r.FloorPrice != nil && s.Side == market.Buy:
		return s, api.BadField("floor_price", "a buy order has a ceiling_price, not a floor")
	case r.CeilingPrice != nil && s.Side == market.Sell:
		return s, api.BadField("ceiling_price", "a sell order has a floor_price, not a ceiling")
	}
	for _, f := range []struct {
		name string
		d    *decimal.Decimal
	}{{"floor_price", r.FloorPrice}, {"ceiling_price", r.CeilingPrice}, {"max_child_notional", r.MaxChildNotional}} {
		if f.d != nil && f.d.Sign() <= 0 {
			return s, api.BadField(f.name, "must be > 0 when given, got %s", f.d)
		}
	}
	if r.FloorPrice != nil {
		s.LimitPrice = *r.FloorPrice
	}
	if r.CeilingPrice != nil {
		s.LimitPrice = *r.CeilingPrice
	}
	if r.MaxChildNotional != nil {
		s.MaxChildNotional = *r.MaxChildNotional
	}
	if r.MaxVenueShare != nil {
		if r.MaxVenueShare.Sign() <= 0 || r.MaxVenueShare.GreaterThan(one) {
			return s, api.BadField("max_venue_share", "must be in (0, 1], got %s", r.MaxVenueShare)
		}
		s.MaxVenueShare = *r.MaxVenueShare
	}
	for i, v := range r.Venues {
		if v == "" {
			return s, api.BadField(fmt.Sprintf("venues[%d]", i), "empty venue name")
		}
		// The engine refuses it too; here the field names the entry.
		if slices.Contains(r.Venues[:i], v) {
			return s, api.BadField(fmt.Sprintf("venues[%d]", i), "venue %q is listed twice", v)
		}
	}
	return window(s, r, now)
}

// window reads the start, the end or duration, and the intervals.
func window(s engine.ParentSpec, r api.OrderRequest, now time.Time) (engine.ParentSpec, *api.Error) {
	s.Start = now
	if r.Start != nil {
		s.Start = r.Start.UTC()
	}
	switch {
	case r.End != nil && r.Duration != "":
		return s, api.BadField("end", "give end or duration, not both")
	case r.End != nil:
		s.End = r.End.UTC()
	case r.Duration != "":
		d, err := time.ParseDuration(r.Duration)
		if err != nil || d <= 0 {
			return s, api.BadField("duration", "want a positive duration such as 8h or 90m, got %q", r.Duration)
		}
		s.End = s.Start.Add(d)
	default:
		return s, api.BadField("end", "missing: give end (RFC 3339) or duration (e.g. 8h)")
	}
	if !s.End.After(s.Start) {
		return s, api.BadField("end", "%s is not after the start %s", s.End.Format(time.RFC3339), s.Start.Format(time.RFC3339))
	}
	if !s.End.After(now) {
		return s, api.BadField("end", "%s is in the past", s.End.Format(time.RFC3339))
	}
	s.SliceInterval = time.Minute
	for _, f := range []struct {
		name, text string
		to         *time.Duration
	}{{"slice_interval", r.SliceInterval, &s.SliceInterval}, {"participation_window", r.ParticipationWindow, &s.ParticipationWindow}} {
		if f.text == "" {
			continue
		}
		d, err := time.ParseDuration(f.text)
		if err != nil || d <= 0 {
			return s, api.BadField(f.name, "want a positive duration such as 1m or 30s, got %q", f.text)
		}
		*f.to = d
	}
	if s.SliceInterval > s.End.Sub(s.Start) {
		return s, api.BadField("slice_interval", "%s is longer than the order's window of %s", s.SliceInterval, s.End.Sub(s.Start))
	}
	return s, nil
}

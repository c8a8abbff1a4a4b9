package binance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	gobinance "github.com/adshao/go-binance/v2"
	"github.com/adshao/go-binance/v2/common"
	"github.com/adshao/go-binance/v2/common/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// Binance's WebSocket API endpoints, where the user data stream lives now
// that listen keys are retired.
const (
	wsAPIURL        = "wss://ws-api.binance.com:443/ws-api/v3"
	wsAPITestnetURL = "wss://ws-api.testnet.binance.vision/ws-api/v3"
	wsAPIPath       = "/ws-api/v3"
	streamKeep      = 24 * time.Hour // fills kept for Fills
	maxRedial       = 30 * time.Second
	// defaultStreamIdle drops a connection that has sent nothing, not
	// even a ping, for this long: Binance pings every 20 s, so it is a
	// half-open one.
	defaultStreamIdle = time.Minute
)

// userStream follows the account's executions over the WebSocket API
// (userDataStream.subscribe.signature) and keeps its fills, so that Fills
// need not ask REST while the stream is up. It is complete from since on;
// after a reconnect the gap is filled from REST (myTrades) before it counts
// as complete again.
type userStream struct {
	mu        sync.Mutex
	fills     []market.Fill // by arrival, trimmed to streamKeep
	seen      map[string]bool
	since     time.Time // market time from which fills are complete; zero: not complete
	heard     time.Time // market time of the last message or ping
	conn      *gorilla.Conn
	closed    bool
	stop      chan struct{}
	done      chan struct{}
	reconnect int // how many times it has reconnected
}

// wsURL is the WebSocket API's address for the configured REST base URL.
func (v *Venue) wsURL() (string, error) {
	switch {
	case v.cfg.StreamURL != "":
		return v.cfg.StreamURL, nil
	case v.cfg.BaseURL != "":
		u, err := url.Parse(v.cfg.BaseURL)
		if err != nil {
			return "", fmt.Errorf("binance %s: base url: %w", v.cfg.Name, err)
		}
		u.Scheme = map[string]string{"https": "wss", "http": "ws"}[u.Scheme]
		u.Path = strings.TrimSuffix(u.Path, "/") + wsAPIPath
		return u.String(), nil
	case v.cfg.Testnet:
		return wsAPITestnetURL, nil
	}
	return wsAPIURL, nil
}

// StartStream subscribes to the account's user data stream and follows it
// until Close, reconnecting after a drop (1 s, doubling, at most 30 s
// apart) and filling the gap from REST. It returns an error when the first
// subscription fails; the adapter then works from REST alone.
func (v *Venue) StartStream(ctx context.Context) error {
	conn, err := v.subscribe(ctx)
	if err != nil {
		return err
	}
	now := v.clk.Now()
	s := &userStream{seen: map[string]bool{}, since: now, heard: now, conn: conn, stop: make(chan struct{}),
		done: make(chan struct{})}
	v.mu.Lock()
	v.stream = s
	v.mu.Unlock()
	go v.follow(s)
	return nil
}

// Close stops the user data stream and waits for it.
func (v *Venue) Close() error {
	v.mu.Lock()
	s := v.stream
	v.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.mu.Unlock()
	<-s.done
	return nil
}

// subscribe dials the WebSocket API and sends the signed subscription,
// built and signed by go-binance's own WebSocket API request code.
func (v *Venue) subscribe(ctx context.Context) (*gorilla.Conn, error) {
	addr, err := v.wsURL()
	if err != nil {
		return nil, err
	}
	dialer := gorilla.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := dialer.DialContext(ctx, addr, nil)
	if err != nil {
		return nil, fmt.Errorf("binance %s: user stream: %w: %s", v.cfg.Name, venues.ErrUnavailable, describe(err))
	}
	id := strconv.FormatInt(v.wall.Now().UnixNano(), 36)
	req, err := websocket.CreateRequest(websocket.NewRequestData(id, v.cfg.APIKey.Reveal(), v.cfg.SecretKey.Reveal(),
		v.timeOffset(), common.KeyTypeHmac), websocket.UserDataStreamSubscribeSignatureSpotWsApiMethod, map[string]interface{}{})
	if err == nil {
		err = conn.WriteMessage(gorilla.TextMessage, req)
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("binance %s: user stream subscribe: %w", v.cfg.Name, err)
	}
	_ = conn.SetReadDeadline(v.wall.Now().Add(10 * time.Second))
	var ack struct {
		Status int              `json:"status"`
		Error  *common.APIError `json:"error"`
	}
	if err := conn.ReadJSON(&ack); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("binance %s: user stream subscribe: %w: %s", v.cfg.Name, venues.ErrUnavailable, describe(err))
	}
	_ = conn.SetReadDeadline(time.Time{})
	if ack.Status != 200 {
		_ = conn.Close()
		if ack.Error != nil {
			return nil, fmt.Errorf("binance %s: user stream subscribe: %w", v.cfg.Name, v.mapErr(ack.Error, &callInfo{status: ack.Status}))
		}
		return nil, fmt.Errorf("binance %s: user stream subscribe: status %d", v.cfg.Name, ack.Status)
	}
	v.log.Info().Msg("user data stream subscribed")
	return conn, nil
}

// follow reads events until the stream stops, and reconnects after a drop.
func (v *Venue) follow(s *userStream) {
	defer close(s.done)
	wait := time.Second
	for {
		s.mu.Lock()
		conn := s.conn
		s.mu.Unlock()
		if conn != nil {
			v.read(s, conn)
		}
		select {
		case <-s.stop:
			return
		default:
		}
		// Dropped: the stream is no longer complete; redial, then fill the
		// gap from REST.
		s.mu.Lock()
		since, lost := s.since, s.heard // nothing is missing from before the last message
		s.since, s.conn = time.Time{}, nil
		s.mu.Unlock()
		v.log.Warn().Msg("user data stream dropped; reconnecting, REST fills meanwhile")
		for {
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-s.stop:
					cancel()
				case <-ctx.Done():
				}
			}()
			if err := v.wall.WaitUntil(ctx, v.wall.Now().Add(wait)); err != nil {
				cancel()
				return
			}
			conn, err := v.subscribe(ctx)
			if err == nil {
				err = v.backfill(ctx, s, lost)
				if err != nil {
					_ = conn.Close()
				}
			}
			cancel()
			if err == nil {
				s.mu.Lock()
				if s.closed {
					s.mu.Unlock()
					_ = conn.Close()
					return
				}
				s.conn, s.since = conn, since
				s.reconnect++
				s.mu.Unlock()
				wait = time.Second
				v.log.Info().Msg("user data stream back; gap filled from REST")
				break
			}
			wait = min(2*wait, maxRedial)
		}
	}
}

// backfill adds the account's trades since the stream last heard from the
// venue, from REST.
func (v *Venue) backfill(ctx context.Context, s *userStream, lost time.Time) error {
	if lost.IsZero() {
		return nil
	}
	v.mu.Lock()
	symbols := make([]string, 0, len(v.inst))
	for sym := range v.inst {
		symbols = append(symbols, sym)
	}
	v.mu.Unlock()
	for _, sym := range symbols {
		fills, err := v.restFills(ctx, sym, lost.Add(-time.Second), v.clk.Now())
		if err != nil {
			return err
		}
		s.add(fills...)
	}
	return nil
}

// read handles events until the connection ends, or stays silent (no
// message, no ping) for the configured idle time.
func (v *Venue) read(s *userStream, conn *gorilla.Conn) {
	alive := func() {
		_ = conn.SetReadDeadline(v.wall.Now().Add(v.cfg.StreamIdle))
		s.mu.Lock()
		s.heard = v.clk.Now()
		s.mu.Unlock()
	}
	conn.SetPingHandler(func(data string) error {
		alive()
		return conn.WriteControl(gorilla.PongMessage, []byte(data), v.wall.Now().Add(10*time.Second))
	})
	alive()
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		alive()
		var env struct {
			Event json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(msg, &env); err != nil || len(env.Event) == 0 {
			continue
		}
		var u execReport
		if err := json.Unmarshal(env.Event, &u); err != nil {
			v.log.Warn().Err(err).Msg("user data stream: unreadable event")
			continue
		}
		if u.Type != "executionReport" || u.ExecutionType != "TRADE" {
			continue
		}
		f, err := v.streamFill(u.WsOrderUpdate)
		if err != nil {
			v.log.Warn().Err(err).Msg("user data stream: bad trade")
			continue
		}
		s.add(f)
	}
}

// execReport is an executionReport event. Every key of Binance's payload
// needs its own field: encoding/json matches keys case-insensitively when
// no tag matches exactly, so an unclaimed "E" (event time) or "W" (working
// time) would land in "e" or "w" and fail the whole decode.
type execReport struct {
	gobinance.WsOrderUpdate
	Type        string `json:"e"`
	EventTime   int64  `json:"E"`
	WorkingTime int64  `json:"W"`
}

// streamFill turns a TRADE execution report into a fill.
func (v *Venue) streamFill(u gobinance.WsOrderUpdate) (market.Fill, error) {
	v.mu.Lock()
	in, ok := v.inst[u.Symbol]
	v.clientIDs[u.Id] = u.ClientOrderId
	v.mu.Unlock()
	if !ok {
		in = market.Instrument{Symbol: u.Symbol}
	}
	o := market.Order{ClientID: u.ClientOrderId, VenueOrderID: strconv.FormatInt(u.Id, 10), Symbol: u.Symbol,
		Side: fromSide(gobinance.SideType(u.Side))}
	return v.fill(in, o, u.TradeId, u.LatestPrice, u.LatestVolume, u.FeeCost, u.FeeAsset, u.IsMaker, u.TransactionTime)
}

// add keeps fills not seen before, and forgets those older than streamKeep.
func (s *userStream) add(fs ...market.Fill) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range fs {
		if s.seen[f.Key()] {
			continue
		}
		s.seen[f.Key()] = true
		s.fills = append(s.fills, f)
	}
	if n := len(s.fills); n > 0 {
		cut := s.fills[n-1].Time.Add(-streamKeep)
		i := sort.Search(n, func(i int) bool { return !s.fills[i].Time.Before(cut) })
		for _, f := range s.fills[:i] {
			delete(s.seen, f.Key())
		}
		s.fills = s.fills[i:]
	}
}

// covered returns the stream's fills on symbol with from < time ≤ to when
// the stream has been complete since before from; ok is false otherwise.
func (s *userStream) covered(symbol string, from, to time.Time) ([]market.Fill, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.since.IsZero() || s.since.After(from) {
		return nil, false
	}
	var out []market.Fill
	for _, f := range s.fills {
		if f.Symbol == symbol && f.Time.After(from) && !f.Time.After(to) {
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, true
}

// errNoStream is what StreamStatus reports before StartStream.
var errNoStream = errors.New("user data stream not started")

// StreamStatus reports whether the user data stream is complete now, and
// how many times it has reconnected.
func (v *Venue) StreamStatus() (complete bool, reconnects int, err error) {
	v.mu.Lock()
	s := v.stream
	v.mu.Unlock()
	if s == nil {
		return false, 0, errNoStream
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.since.IsZero(), s.reconnect, nil
}

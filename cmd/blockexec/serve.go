package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/spf13/cobra"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/engine/kvjournal"
	"github.com/blockexec/blockexec/service"
)

type serveFlags struct {
	config  string
	dataDir string
	listen  string
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve -c FILE",
		Short: "Run the engine as a service: a signed HTTP JSON API (and NATS) for parent orders",
		Long: `serve runs the engine as a long-running service over the config's venues,
NATS and ledger, and takes parent orders from an HTTP JSON API on
service.listen (default 127.0.0.1:8480; HTTPS with service.tls_cert_file and
service.tls_key_file), and, with service.nats_api: true, from the same
operations as a NATS micro service on blockexec.api.*. The config's own
parents, if any, are not run: serve works what its clients submit.

Every request but /healthz and /metrics is signed with an API key from
service.keys_file (mode 0600; make keys with blockexec keys new): a key id,
a timestamp within 30 s, a fresh nonce and an HMAC-SHA256 signature over the
method, path, query, timestamp, nonce and the body's SHA-256. Keys carry
scopes (read, trade, admin) and a rate limit. The server reads the keys file
again within a second of a change, and on SIGHUP, so keys rotate without a
restart; a file that does not load is logged and the keys in force stay.
api/openapi.yaml documents the API; blockexec order is a client for it.

serve runs in real time (run.clock: wall). A synthetic market behind sim
venues starts at most a day before now. Ctrl-C stops taking requests, stops
the engine between slices, lets the recorder settle and closes the ledger;
working orders stay as they are in the ledger and on the bus.`,
		Example: `  blockexec keys new --file data/serve-keys.yaml --client fund-a --scopes read,trade --secret-out fund-a.secret
  blockexec serve -c configs/examples/serve-btc.yaml
  blockexec order submit --secret-file fund-a.secret --key-id <the id keys new printed> --id sell-1 --side sell \
      --symbol BTCUSDT --qty 10 --duration 2h --max-participation 0.1 --band-bps 75
  kill -HUP <pid of serve>    # after editing the keys file: read it now`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serveCommand(ctx, f, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "config file (YAML) with venues, nats, ledger and a service section")
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "", "override run.data_dir: NATS store and SQLite ledger go here")
	cmd.Flags().StringVar(&f.listen, "listen", "", "override service.listen (host:port)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func serveCommand(ctx context.Context, f serveFlags, logOut io.Writer) error {
	cfg, err := configs.Load(f.config)
	if err != nil {
		return &exitError{exitBadConfig, err}
	}
	if f.dataDir != "" {
		cfg.SetDataDir(f.dataDir)
	}
	if f.listen != "" {
		cfg.Service.Listen = f.listen
	}
	if cfg.Run.Clock != configs.ClockWall {
		return &exitError{exitBadConfig, cfg.FieldError("run.clock", "serve works in real time: set run.clock: wall")}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	s, err := startServer(ctx, cfg, logOut, clock.Wall{})
	if err != nil {
		return err
	}
	s.j.log.Info().Str("listen", s.addr).Bool("tls", cfg.Service.TLSCert != "").Bool("nats_api", cfg.Service.NATSAPI).
		Strs("venues", s.j.eng.VenueNames()).Msg("serving")
	if err := s.wait(ctx, hup); err != nil {
		s.close()
		return &exitError{exitFailed, err}
	}
	s.j.log.Info().Msg("stopping")
	return s.close()
}

// wait serves until ctx ends (nil) or the engine or the HTTP server stops
// on its own (its error). Each signal on hup reloads the API keys file;
// one that does not load is logged and the keys in force stay.
func (s *server) wait(ctx context.Context, hup <-chan os.Signal) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-s.failed:
			return err
		case <-hup:
			if err := s.keys.Reload(); err != nil {
				s.j.log.Error().Err(err).Msg("SIGHUP: the keys file does not load: the keys in force stay")
			}
		}
	}
}

// server is a running service: the job's graph, the engine's loop, the
// HTTP server and the NATS micro service.
type server struct {
	j           *job
	desk        *service.Desk
	keys        *service.Keyring
	httpSrv     *http.Server
	addr        string       // where the HTTP API listens
	metricsSrv  *http.Server // /metrics alone, with service.metrics_listen
	metricsAddr string
	natsSvc     micro.Service
	heart       *kvjournal.Heartbeat
	stopEng     context.CancelFunc
	engDone     chan error
	engStopped  chan struct{} // closed when the engine's loop has returned
	httpEnd     chan error
	failed      chan error // the engine or an HTTP server stopped on its own

	closeOnce sync.Once
	closeErr  error
}

// startServer builds and starts everything serve runs, on clk (the wall
// clock, or a manual one in tests). On error, what started is stopped.
// Each of tune is applied to the engine before it serves (benchmarks
// measure its loop).
func startServer(ctx context.Context, cfg *configs.Config, logOut io.Writer, clk clock.Clock,
	tune ...func(*engine.Engine)) (_ *server, err error) {
	if cfg.Service.KeysFile == "" {
		return nil, &exitError{exitBadConfig, cfg.FieldError("service.keys_file",
			"missing: serve needs its API keys file (make one with blockexec keys new)")}
	}
	// The client signs with its wall clock: the server checks against its own.
	keys, err := service.LoadKeys(cfg.Service.KeysFile, clock.Wall{})
	if err != nil {
		return nil, &exitError{exitBadConfig, cfg.FieldError("service.keys_file", err.Error())}
	}
	tlsCfg, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	if day := clk.Now().Add(-24 * time.Hour); cfg.Market.Start.Before(day) {
		cfg.Market.Start = day.Truncate(time.Minute) // the synthetic market need not replay two years first
	}
	metrics := service.NewMetrics()
	j, err := newJobWith(cfg, logOut, jobOptions{clk: clk, wrapVenue: metrics.WrapVenue, wrapPub: metrics.WrapPublisher,
		noRecorder: !cfg.Service.Record})
	var fe *configs.FieldError
	if errors.As(err, &fe) {
		return nil, &exitError{exitBadConfig, fe}
	}
	if err != nil {
		return nil, &exitError{exitFailed, err}
	}
	keys.SetLog(j.log)
	if err := j.start(ctx); err != nil {
		return nil, &exitError{exitFailed, fmt.Errorf("start: %w", err)}
	}
	s := &server{j: j, keys: keys, failed: make(chan error, 3), engDone: make(chan error, 1), engStopped: make(chan struct{}),
		httpEnd: make(chan error, 1)}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if err := j.checkKeys(ctx); err != nil {
		return nil, err
	}
	s.desk = service.NewDesk(j.eng, apiSchedules{cfg}, service.LedgerFills{Ledger: j.ledger},
		service.BusEvents{JS: j.conn.JS}, service.UsedIDs{Ledger: j.ledger, JS: j.conn.JS}, clk)
	// Every order is checkpointed on the bus (JetStream KeyValue), naming
	// this engine, whose heartbeat says it still works them: a restarted
	// service takes its orders back, and when an engine's heartbeat
	// expires another engine on the same NATS takes them over.
	ttl, owner := heartbeatTTL, engineName()
	journal, err := kvjournal.New(ctx, j.conn.JS, j.conn.Replicas(), owner)
	if err != nil {
		return nil, &exitError{exitFailed, err}
	}
	j.eng.UseJournal(journal)
	heart, err := kvjournal.NewHeartbeat(ctx, j.conn.JS, owner, ttl, j.conn.Replicas())
	if err != nil {
		return nil, &exitError{exitFailed, err}
	}
	s.heart = heart
	j.eng.UseFence(heart.Fence)
	for _, t := range tune {
		t(j.eng)
	}
	engCtx, stopEng := context.WithCancel(context.Background())
	s.stopEng = stopEng
	go func() {
		err := j.eng.Serve(engCtx)
		close(s.engStopped)
		s.engDone <- err
		if !errors.Is(err, context.Canceled) {
			s.failed <- fmt.Errorf("engine: %w", err)
		}
	}()
	if err := takeBack(ctx, j, journal, heart, s.desk, true); err != nil {
		return nil, err
	}
	go heart.Keep(engCtx, func(err error) {
		j.log.Warn().Err(err).Msg("heartbeat not written: if it expires, other engines may take this one's orders over")
	})
	go takeOver(engCtx, ttl/2, j, journal, heart, s.desk)
	probe := &engineProbe{ping: j.eng.Ping, stopped: s.engStopped, timeout: engineProbeTimeout}
	health := func() api.Health {
		h := api.Health{Status: "ok", Checks: map[string]string{"engine": probe.check(), "nats": "ok"}}
		if h.Checks["engine"] != "ok" {
			h.Status = "degraded"
		}
		if !j.conn.NC.IsConnected() {
			h.Status, h.Checks["nats"] = "degraded", "disconnected"
		}
		return h
	}
	maxBody := cfg.Service.MaxBody
	if maxBody == 0 {
		maxBody = service.DefaultMaxBody
	}
	closing := make(chan struct{}) // closed as shutdown begins: event streams end then
	handler := service.NewHTTP(s.desk, keys, service.HTTPConfig{MaxBody: maxBody, Log: j.log, Metrics: metrics, Health: health,
		SeparateMetrics: cfg.Service.MetricsListen != "", Closing: closing})
	ln, err := net.Listen("tcp", cfg.Service.Listen)
	if err != nil {
		return nil, &exitError{exitBadConfig, cfg.FieldError("service.listen", err.Error())}
	}
	s.addr = ln.Addr().String()
	s.httpSrv = newHTTPServer(handler)
	s.httpSrv.TLSConfig = tlsCfg
	s.httpSrv.RegisterOnShutdown(sync.OnceFunc(func() { close(closing) }))
	go func() {
		var err error
		if tlsCfg != nil {
			err = s.httpSrv.ServeTLS(ln, "", "") // the certificate is TLSConfig's, loaded above
		} else {
			err = s.httpSrv.Serve(ln)
		}
		s.httpEnd <- err
		if !errors.Is(err, http.ErrServerClosed) {
			s.failed <- fmt.Errorf("http: %w", err)
		}
	}()
	if cfg.Service.MetricsListen == "" {
		j.log.Warn().Str("listen", s.addr).Msg("GET /metrics is served on the API's listener without a signature: " +
			"anyone who reaches it reads the order flow's counts; set service.metrics_listen to serve it on a listener of its own")
	} else {
		mln, err := net.Listen("tcp", cfg.Service.MetricsListen)
		if err != nil {
			return nil, &exitError{exitBadConfig, cfg.FieldError("service.metrics_listen", err.Error())}
		}
		s.metricsAddr = mln.Addr().String()
		s.metricsSrv = newHTTPServer(metricsHandler(metrics))
		go func() {
			if err := s.metricsSrv.Serve(mln); !errors.Is(err, http.ErrServerClosed) {
				s.failed <- fmt.Errorf("metrics http: %w", err)
			}
		}()
	}
	if cfg.Service.NATSAPI {
		if s.natsSvc, err = service.StartNATS(j.conn.NC, s.desk, keys, service.NATSConfig{MaxBody: maxBody, Log: j.log, Metrics: metrics,
			Version: "1.0.0"}); err != nil {
			return nil, &exitError{exitFailed, fmt.Errorf("nats api: %w", err)}
		}
	}
	return s, nil
}

// close stops taking requests, stops the engine between slices, then the
// graph (the recorder settles, the ledger closes, NATS stops). A second
// call returns the first's answer.
func (s *server) close() error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown() })
	return s.closeErr
}

func (s *server) shutdown() error {
	for _, srv := range []*http.Server{s.httpSrv, s.metricsSrv} {
		if srv == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		_ = srv.Shutdown(ctx) // event streams end as it begins
		cancel()
	}
	if s.natsSvc != nil {
		_ = s.natsSvc.Stop()
	}
	if s.stopEng != nil {
		s.stopEng()
		<-s.engDone
	}
	if s.heart != nil {
		// The engine checkpointed its orders as it stopped: other engines
		// (or this one restarted) may take them now, not after the
		// heartbeat expires.
		hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.heart.Stop(hctx); err != nil {
			s.j.log.Warn().Err(err).Msg("heartbeat not removed; it expires")
		}
		cancel()
	}
	if s.j.rec != nil {
		wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.j.rec.WaitIdle(wctx); err != nil {
			s.j.log.Warn().Err(err).Msg("the recorder did not settle before stopping")
		}
	}
	return s.j.stop()
}

// runOwnerPrefix starts the owner name of a run's checkpoints.
const runOwnerPrefix = "run-"

// heartbeatTTL is how long an engine's heartbeat lives unless written
// again (every third of it): how long its orders wait for another engine
// after it died. A variable for the tests.
var heartbeatTTL = 15 * time.Second

// engineName names this engine in the checkpoints and heartbeats: host,
// process and a random part, so a restarted process is another engine.
func engineName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomToken()[:8])
}

// takeOver looks, every (half a heartbeat), for working orders whose
// engine's heartbeat expired, and takes them over, until ctx ends.
func takeOver(ctx context.Context, every time.Duration, j *job, journal *kvjournal.Journal, heart *kvjournal.Heartbeat, desk *service.Desk) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := takeBack(ctx, j, journal, heart, desk, false); err != nil {
			j.log.Warn().Err(err).Msg("looking for orders to take over")
		}
	}
}

// takeBack adopts the orders in the journal that no live engine works:
// at start every one (ended ones too, for their status and ids), then
// the working ones only. An order whose engine lives is left to it.
func takeBack(ctx context.Context, j *job, journal *kvjournal.Journal, heart *kvjournal.Heartbeat, desk *service.Desk, atStart bool) error {
	list := journal.Working
	if atStart {
		list = journal.List
	}
	cps, err := list(ctx)
	if err != nil {
		return &exitError{exitFailed, err}
	}
	var orphans []engine.Checkpoint
	for _, cp := range cps {
		if strings.HasPrefix(cp.Owner, runOwnerPrefix) {
			continue // a run's parent: running the run again resumes it
		}
		if st, _ := engine.ParseState(cp.State); !st.Terminal() {
			if alive, err := heart.Alive(ctx, cp.Owner); err != nil || alive {
				continue // a live engine's (this one's included)
			}
		}
		if !desk.Has(cp.ParentID) {
			orphans = append(orphans, cp)
		}
	}
	if len(orphans) == 0 {
		return nil
	}
	n, errs := desk.Recover(ctx, orphans)
	for _, err := range errs {
		if !errors.Is(err, engine.ErrJournalConflict) {
			j.log.Error().Err(err).Msg("an order could not be taken back")
		}
	}
	if n > 0 {
		j.log.Warn().Int("orders", n).Bool("at_start", atStart).Msg("orders taken back from their checkpoints")
	}
	return nil
}

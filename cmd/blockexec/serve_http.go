package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/service"
)

// The HTTP servers' timeouts. No WriteTimeout: an event stream lasts as
// long as its order, and each of its writes has a deadline of its own
// (service.HTTPConfig.StreamWriteTimeout).
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 120 * time.Second
	shutdownTimeout   = 10 * time.Second
)

// newHTTPServer is an http.Server for h with the service's timeouts.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, IdleTimeout: idleTimeout}
}

// metricsHandler serves /metrics alone, for service.metrics_listen.
func metricsHandler(m *service.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	return mux
}

// serverTLS loads the API's certificate and key, when configured, so that a
// missing or bad file is a config error before anything starts; nil
// without TLS.
func serverTLS(cfg *configs.Config) (*tls.Config, error) {
	s := cfg.Service
	if s.TLSCert == "" {
		return nil, nil
	}
	for _, f := range []struct{ field, path string }{{"service.tls_cert_file", s.TLSCert}, {"service.tls_key_file", s.TLSKey}} {
		fh, err := os.Open(f.path)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is said once
			}
			return nil, &exitError{exitBadConfig, cfg.FieldError(f.field, fmt.Sprintf("cannot read %s: %v", f.path, err))}
		}
		_ = fh.Close()
	}
	cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
	if err != nil {
		return nil, &exitError{exitBadConfig, cfg.FieldError("service.tls_cert_file",
			fmt.Sprintf("%s with the key %s: %v", s.TLSCert, s.TLSKey, err))}
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// How /healthz probes the engine's serving loop: a command answered within
// engineProbeTimeout, one probe at a time, its answer reused for
// engineProbeFresh so that unsigned callers cannot fill the loop with
// commands. Real time: they bound waits on the network's side.
const (
	engineProbeTimeout = 2 * time.Second
	engineProbeFresh   = time.Second
)

// engineProbe is /healthz's engine check: "ok" when the serving loop
// answers a command in time, "stopped" once it has returned, and
// "unresponsive" when it does not answer.
type engineProbe struct {
	ping    func(ctx context.Context) error // nil: the loop answered
	stopped <-chan struct{}                 // closed when the loop has returned
	timeout time.Duration

	mu   sync.Mutex // one probe at a time
	at   time.Time  // when last was found
	last string
}

func (p *engineProbe) check() string {
	select {
	case <-p.stopped:
		return "stopped"
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < engineProbeFresh {
		return p.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	switch err := p.ping(ctx); {
	case err == nil:
		p.last = "ok"
	case errors.Is(err, engine.ErrNotServing):
		p.last = "stopped"
	default:
		p.last = "unresponsive"
	}
	p.at = time.Now()
	return p.last
}

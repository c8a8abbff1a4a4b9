package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/client"
	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/venues/venuetest"
)

// get answers a plain GET, unsigned.
func get(t *testing.T, hc *http.Client, url string) (int, []byte) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestServe_ShutdownEndsEventStreamsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	sv := startServed(t)
	a := sv.client(t, "fund-a-1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, _, err := a.Submit(ctx, sellOrder("watched-1")); err != nil {
		t.Fatal(err)
	}
	events, _ := a.Events(ctx, "watched-1", 0)
	select {
	case <-events: // the stream is open
	case <-time.After(10 * time.Second):
		t.Fatal("no event from the stream")
	}
	// The HTTP server's shutdown waits up to 10 s for requests to end: a
	// stream that is not ended by it would hold close that long.
	start := time.Now()
	if err := sv.s.close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("close took %s with an event stream open", d.Round(time.Millisecond))
	}
}

func TestServe_HealthzReportsTheEngineLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	sv := startServed(t)
	health := func() (int, api.Health) {
		status, b := get(t, http.DefaultClient, sv.url+"/healthz")
		var h api.Health
		if err := json.Unmarshal(b, &h); err != nil {
			t.Fatalf("healthz %d: %s", status, b)
		}
		return status, h
	}
	if status, h := health(); status != http.StatusOK || h.Status != "ok" || h.Checks["engine"] != "ok" ||
		h.Checks["kill_switch"] != "released" {
		t.Fatalf("healthz: %d %+v", status, h)
	}
	sv.s.stopEng()
	<-sv.s.engStopped
	if status, h := health(); status != http.StatusServiceUnavailable || h.Status != "degraded" || h.Checks["engine"] != "stopped" {
		t.Fatalf("healthz with the engine's loop stopped: %d %+v", status, h)
	}
}

func TestEngineProbe_SaysWhetherTheLoopAnswers(t *testing.T) {
	stopped := make(chan struct{})
	close(stopped)
	for _, tc := range []struct {
		name    string
		ping    func(ctx context.Context) error
		stopped chan struct{}
		want    string
	}{
		{"answers", func(context.Context) error { return nil }, nil, "ok"},
		{"not serving", func(context.Context) error { return engine.ErrNotServing }, nil, "stopped"},
		{"returned", func(context.Context) error { return nil }, stopped, "stopped"},
		{"stuck", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, nil, "unresponsive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pings atomic.Int32
			p := &engineProbe{ping: func(ctx context.Context) error { pings.Add(1); return tc.ping(ctx) },
				stopped: tc.stopped, timeout: 50 * time.Millisecond}
			if got := p.check(); got != tc.want {
				t.Fatalf("check: %q, want %q", got, tc.want)
			}
			// Asked again at once: the same answer, without a second command.
			if got := p.check(); got != tc.want || pings.Load() > 1 {
				t.Fatalf("again: %q after %d pings", got, pings.Load())
			}
		})
	}
}

func TestServe_MetricsListenServesMetricsApart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	sv := startServedWith(t, func(c *configs.Config) { c.Service.MetricsListen = "127.0.0.1:0" })
	if status, b := get(t, http.DefaultClient, sv.url+"/metrics"); status != http.StatusNotFound {
		t.Fatalf("/metrics on the API's listener: %d %.200s", status, b)
	}
	metrics := "http://" + sv.s.metricsAddr
	if status, b := get(t, http.DefaultClient, metrics+"/metrics"); status != http.StatusOK ||
		!strings.Contains(string(b), "blockexec_event_streams 0") {
		t.Fatalf("/metrics on its listener: %d %.200s", status, b)
	}
	if status, _ := get(t, http.DefaultClient, metrics+"/healthz"); status != http.StatusNotFound {
		t.Fatalf("/healthz on the metrics listener: %d", status)
	}
	if strings.Contains(sv.logs.String(), "metrics_listen") {
		t.Fatalf("a warning with /metrics apart:\n%s", sv.logs)
	}
}

func TestServe_MetricsOnTheAPIListenerAreWarnedOf(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	sv := startServed(t)
	if status, _ := get(t, http.DefaultClient, sv.url+"/metrics"); status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	if logs := sv.logs.String(); !strings.Contains(logs, "without a signature") || !strings.Contains(logs, "service.metrics_listen") {
		t.Fatalf("no warning of a public /metrics:\n%s", logs)
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// into dir, and returns their files and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "blockexec test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: pkcs8}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServe_TLSIsUsedWhenConfigured(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	sv := startServedWith(t, func(c *configs.Config) { c.Service.TLSCert, c.Service.TLSKey = certFile, keyFile })
	if !strings.HasPrefix(sv.url, "https://") {
		t.Fatalf("url %s", sv.url)
	}
	ctx := context.Background()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	c, err := client.New(client.Config{BaseURL: sv.url, KeyID: "viewer-1", Secret: sv.secrets["viewer-1"], HTTPClient: hc, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(ctx, ""); err != nil {
		t.Fatalf("a signed call over TLS: %v", err)
	}
	resp, err := hc.Get(sv.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 || resp.TLS.PeerCertificates[0].Subject.CommonName != "blockexec test" {
		t.Fatalf("not the configured certificate: %+v", resp.TLS)
	}
	// Plain HTTP to the same port is refused.
	plain, err := client.New(client.Config{BaseURL: "http://" + sv.s.addr, KeyID: "viewer-1", Secret: sv.secrets["viewer-1"], Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.List(ctx, ""); err == nil {
		t.Fatal("a plain HTTP call to the TLS listener succeeded")
	}
	// And TLS without trusting the certificate fails the handshake.
	untrusting, err := client.New(client.Config{BaseURL: sv.url, KeyID: "viewer-1", Secret: sv.secrets["viewer-1"], Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untrusting.List(ctx, ""); err == nil {
		t.Fatal("a client that does not trust the certificate was served")
	}
}

func TestServe_AMissingOrBadTLSFileIsAConfigError(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	garbage := filepath.Join(dir, "garbage.crt")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.crt")
	cfg, _ := servedConfig(t)
	example, err := os.ReadFile("../../configs/examples/serve-btc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cert, key, field, what string
	}{
		{"missing cert", missing, keyFile, "service.tls_cert_file", missing + ": no such file"},
		{"missing key", certFile, missing, "service.tls_key_file", missing + ": no such file"},
		{"cert not a certificate", garbage, keyFile, "service.tls_cert_file", garbage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := string(example)
			for old, new := range map[string]string{
				"  listen: 127.0.0.1:8480":                  "  listen: 127.0.0.1:0",
				"  keys_file: ./data/serve-keys.yaml":       "  keys_file: " + cfg.Service.KeysFile,
				"  # tls_cert_file: /etc/blockexec/tls.crt": "  tls_cert_file: " + tc.cert,
				"  # tls_key_file: /etc/blockexec/tls.key":  "  tls_key_file: " + tc.key,
			} {
				if !strings.Contains(text, old) {
					t.Fatalf("the example has no %q; update the test", old)
				}
				text = strings.Replace(text, old, new, 1)
			}
			file := filepath.Join(t.TempDir(), "serve.yaml")
			if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			logs := &venuetest.LogBuffer{}
			err := serveCommand(context.Background(), serveFlags{config: file, dataDir: t.TempDir()}, logs)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitBadConfig {
				t.Fatalf("err = %v, want exit code %d", err, exitBadConfig)
			}
			for _, want := range []string{file + ":", tc.field, tc.what} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not say %q", err, want)
				}
			}
			if strings.Contains(logs.String(), "serving") {
				t.Errorf("serving was logged:\n%s", logs)
			}
		})
	}
}

func TestServe_HTTPServersHaveTimeoutsButNoWriteTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	sv := startServedWith(t, func(c *configs.Config) { c.Service.MetricsListen = "127.0.0.1:0" })
	for name, srv := range map[string]*http.Server{"api": sv.s.httpSrv, "metrics": sv.s.metricsSrv} {
		// No WriteTimeout: it would cut event streams, whose writes have
		// deadlines of their own.
		if srv.ReadHeaderTimeout != 10*time.Second || srv.ReadTimeout != 30*time.Second ||
			srv.IdleTimeout != 120*time.Second || srv.WriteTimeout != 0 {
			t.Errorf("%s: read header %s, read %s, idle %s, write %s", name, srv.ReadHeaderTimeout, srv.ReadTimeout,
				srv.IdleTimeout, srv.WriteTimeout)
		}
	}
}

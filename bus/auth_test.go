package bus

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"
)

// startServer runs a nats-server with JetStream on a loopback port,
// configured by edit, and returns its client URL.
func startServer(t *testing.T, edit func(*server.Options)) string {
	t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	edit(o)
	srv, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return srv.ClientURL()
}

// writeFile writes a test secret with the given mode and returns its path.
func writeFile(t *testing.T, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func userSeed(t *testing.T) (seed []byte, public string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ = kp.Seed()
	public, _ = kp.PublicKey()
	return seed, public
}

// connectCase connects with opts, expecting an error holding want, or
// none (then it publishes a fill through JetStream) when want is "".
func connectCase(t *testing.T, opts Options, want string) {
	t.Helper()
	c, err := Connect(context.Background(), opts, zerolog.Nop())
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := NewPublisher(c.JS).PublishFill(context.Background(), fill("auth", "1")); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err == nil {
		c.Close()
		t.Fatalf("connected, want an error with %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q, want it to say %q", err, want)
	}
}

// TestConnect_NkeySeedFile: the user's seed logs in; another user's seed,
// no seed, or a seed file others can read is refused, clearly.
func TestConnect_NkeySeedFile(t *testing.T) {
	seed, pub := userSeed(t)
	other, _ := userSeed(t)
	url := startServer(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"right seed", Options{URL: url, NKeySeedFile: writeFile(t, "user.nk", seed, 0o600)}, ""},
		{"another user's seed", Options{URL: url, NKeySeedFile: writeFile(t, "other.nk", other, 0o600)}, "the server refused the credentials"},
		{"no seed", Options{URL: url}, "the server refused the credentials"},
		{"seed readable by others", Options{URL: url, NKeySeedFile: writeFile(t, "open.nk", seed, 0o644)},
			"has mode 0644: group or others can access it; chmod 600 it"},
		{"not a seed", Options{URL: url, NKeySeedFile: writeFile(t, "junk.nk", []byte("hello"), 0o600)}, "nkey seed file"},
		{"creds and seed", Options{URL: url, NKeySeedFile: "a", CredsFile: "b"}, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) { connectCase(t, tc.opts, tc.want) })
	}
}

// TestConnect_UserPasswordNeverShown: a wrong password in the URL is
// refused and the error shows the URL without it.
func TestConnect_UserPasswordNeverShown(t *testing.T) {
	url := startServer(t, func(o *server.Options) { o.Username, o.Password = "blockexec", "right-horse" })
	withUser := func(pw string) string { return strings.Replace(url, "nats://", "nats://blockexec:"+pw+"@", 1) }
	connectCase(t, Options{URL: withUser("right-horse")}, "")
	_, err := Connect(context.Background(), Options{URL: withUser("wrong-battery")}, zerolog.Nop())
	if err == nil || strings.Contains(err.Error(), "wrong-battery") || !strings.Contains(err.Error(), "refused the credentials") {
		t.Fatalf("error %v: want a refusal without the password", err)
	}
}

// pki is a throwaway CA with a server and a client certificate, as PEM
// files (the key files mode 0600).
type pki struct {
	ca, cert, key string
	server        tls.Certificate
	pool          *x509.CertPool
}

func newPKI(t *testing.T, name string) pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	keyPEM := func(k *ecdsa.PrivateKey) []byte {
		der, _ := x509.MarshalECPrivateKey(k)
		return pemOf("EC PRIVATE KEY", der)
	}
	srvDER, srvKey := issue(2, x509.ExtKeyUsageServerAuth)
	server, err := tls.X509KeyPair(pemOf("CERTIFICATE", srvDER), keyPEM(srvKey))
	if err != nil {
		t.Fatal(err)
	}
	cliDER, cliKey := issue(3, x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pki{
		ca:     writeFile(t, "ca.pem", pemOf("CERTIFICATE", caDER), 0o644),
		cert:   writeFile(t, "client.pem", pemOf("CERTIFICATE", cliDER), 0o644),
		key:    writeFile(t, "client-key.pem", keyPEM(cliKey), 0o600),
		server: server, pool: pool,
	}
}

// TestConnect_TLSWithClientCertificate: a server that verifies client
// certificates takes ours; a CA that did not sign its certificate, or no
// client certificate, is refused with a message saying which.
func TestConnect_TLSWithClientCertificate(t *testing.T) {
	good, rogue := newPKI(t, "blockexec-test"), newPKI(t, "rogue")
	url := startServer(t, func(o *server.Options) {
		o.TLS, o.TLSVerify, o.TLSTimeout = true, true, 5
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{good.server}, ClientCAs: good.pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	})
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"ca and client certificate", Options{URL: url, TLSCAFile: good.ca, TLSCertFile: good.cert, TLSKeyFile: good.key}, ""},
		{"wrong ca", Options{URL: url, TLSCAFile: rogue.ca, TLSCertFile: good.cert, TLSKeyFile: good.key},
			"not signed by a trusted CA (check tls_ca_file)"},
		{"certificate of another ca", Options{URL: url, TLSCAFile: good.ca, TLSCertFile: rogue.cert, TLSKeyFile: rogue.key},
			"refused the client certificate"},
		{"no client certificate", Options{URL: url, TLSCAFile: good.ca}, "it requires a client certificate (tls_cert_file, tls_key_file)"},
		{"key readable by the group", Options{URL: url, TLSCAFile: good.ca, TLSCertFile: good.cert,
			TLSKeyFile: writeFile(t, "open-key.pem", []byte("x"), 0o640)}, "TLS key file"},
	} {
		t.Run(tc.name, func(t *testing.T) { connectCase(t, tc.opts, tc.want) })
	}
}

// TestConn_DialLogsInAsConnectDid: a second connection to an nkey server
// carries the seed of the first; one to the embedded server is in process.
func TestConn_DialLogsInAsConnectDid(t *testing.T) {
	seed, pub := userSeed(t)
	url := startServer(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
	for name, opts := range map[string]Options{
		"nkey":     {URL: url, NKeySeedFile: writeFile(t, "user.nk", seed, 0o600)},
		"embedded": {StoreDir: t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Connect(context.Background(), opts, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			nc, err := c.Dial("second")
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

package bus

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// AuthOptions are the nats.go options of the credential and TLS files,
// for another connection to the same servers (blockexec watch).
func (o Options) AuthOptions() ([]nats.Option, error) { return o.authOptions() }

// authOptions turns the credential and TLS files into nats.go options,
// refusing a creds, seed or key file that group or others can read.
func (o Options) authOptions() ([]nats.Option, error) {
	if o.CredsFile != "" && o.NKeySeedFile != "" {
		return nil, errors.New("give a creds file or an nkey seed file, not both")
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	for _, f := range []struct{ what, file string }{{"creds file", o.CredsFile}, {"nkey seed file", o.NKeySeedFile},
		{"TLS key file", o.TLSKeyFile}} {
		if err := ownerOnly(f.what, f.file); err != nil {
			return nil, err
		}
	}
	var out []nats.Option
	if o.CredsFile != "" {
		out = append(out, nats.UserCredentials(o.CredsFile))
	}
	if o.NKeySeedFile != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKeySeedFile)
		if err != nil {
			// nats.go's message names the file but never the seed.
			return nil, fmt.Errorf("nkey seed file %s: %w", o.NKeySeedFile, err)
		}
		out = append(out, opt)
	}
	if o.TLSCAFile != "" {
		out = append(out, nats.RootCAs(o.TLSCAFile))
	}
	if o.TLSCertFile != "" {
		out = append(out, nats.ClientCert(o.TLSCertFile, o.TLSKeyFile))
	}
	return out, nil
}

// ownerOnly refuses a secret file that group or others can access, as the
// venues' secret files are.
func ownerOnly(what, file string) error {
	if file == "" {
		return nil
	}
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s %s has mode %04o: group or others can access it; chmod 600 it", what, file, perm)
	}
	return nil
}

// describeAuth names how the connection logs in, for errors: the files,
// never their contents nor a password.
func (o Options) describeAuth() string {
	var parts []string
	for _, f := range []struct{ what, file string }{{"creds", o.CredsFile}, {"nkey seed", o.NKeySeedFile},
		{"tls ca", o.TLSCAFile}, {"tls cert", o.TLSCertFile}} {
		if f.file != "" {
			parts = append(parts, f.what+" "+f.file)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// explain adds what to check to the errors a wrong credential or
// certificate gives; the cause stays in the chain.
func (o Options) explain(err error) error {
	msg := err.Error()
	// With TLS 1.3 the server checks a client certificate after the
	// handshake and just closes the connection: the client sees EOF or a
	// broken pipe, depending on timing.
	if strings.Contains(msg, "tls") && (strings.Contains(msg, "closed by remote") ||
		strings.Contains(msg, "certificate required") || strings.Contains(msg, "EOF") ||
		strings.Contains(msg, "reset by peer") || strings.Contains(msg, "broken pipe")) {
		if o.TLSCertFile == "" {
			return fmt.Errorf("the server closed the TLS connection: it requires a client certificate (tls_cert_file, tls_key_file): %w", err)
		}
		return fmt.Errorf("the server closed the TLS connection: it refused the client certificate (check tls_cert_file and tls_key_file against the server's CA): %w", err)
	}
	switch {
	case errors.Is(err, nats.ErrAuthorization), strings.Contains(strings.ToLower(msg), "authorization violation"),
		strings.Contains(strings.ToLower(msg), "authentication"):
		return fmt.Errorf("the server refused the credentials (check the creds or nkey seed file, or the URL's user): %w", err)
	case strings.Contains(msg, "certificate signed by unknown authority"), strings.Contains(msg, "failed to verify certificate"):
		return fmt.Errorf("the server's certificate is not signed by a trusted CA (check tls_ca_file): %w", err)
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"),
		strings.Contains(msg, "unknown certificate authority"):
		return fmt.Errorf("the server refused the client certificate (check tls_cert_file and tls_key_file): %w", err)
	case errors.Is(err, nats.ErrSecureConnRequired):
		return fmt.Errorf("the server requires TLS: use a tls:// URL or give tls_ca_file: %w", err)
	}
	return err
}

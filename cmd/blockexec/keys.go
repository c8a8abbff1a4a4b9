package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/service"
	"github.com/blockexec/blockexec/venues"
)

func newKeysCmd() *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "Check the venues' API keys without trading",
		Long: `keys works on API keys. check asks the real exchanges a config names about
their keys: keys are never written in the config, each venue says where its
key and secret are, an environment variable (api_key_env, api_secret_env) or
a file that only its owner may read (api_key_file, api_secret_file). Give the
engine a key that can read and trade, restricted to this host's IP
addresses, and nothing more. new makes keys for the clients of blockexec
serve.`,
		Example: `  blockexec keys check -c treasury.yaml`,
		Args:    cobra.NoArgs,
	}
	var cfgPath string
	var asJSON bool
	check := &cobra.Command{
		Use:   "check -c FILE",
		Short: "Report per venue: connectivity, clock skew, key permissions, rate-limit headroom",
		Long: `check reads the config's venues, loads each real exchange's credentials from
where the config says (api_key_env / api_key_file, api_secret_env /
api_secret_file; a file readable by group or others is refused) and asks the
exchange, without placing an order:

  - whether it answers an authenticated request, and how fast;
  - how far its clock is from this host's (signed requests carry a timestamp);
  - what the key may do: a key that can withdraw or transfer funds is refused,
    as blockexec run refuses it; a key without IP restriction is a warning;
  - how much of the request and order budgets is used.

Sim venues have no key and are listed as such; fake: true venues are checked
against their in-process fake. Exit codes: 0 every key is fit to trade,
2 a key is refused or a credential cannot be read, 1 a venue did not answer.`,
		Example: `  BINANCE_API_KEY=... BINANCE_API_SECRET=... blockexec keys check -c treasury.yaml
  blockexec keys check -c configs/examples/unwind-btc-exchanges.yaml --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return keysCheck(cmd.Context(), cfgPath, asJSON, cmd.OutOrStdout())
		},
	}
	check.Flags().StringVarP(&cfgPath, "config", "c", "", "config file (YAML) whose venues to check")
	check.Flags().BoolVar(&asJSON, "json", false, "print the reports as JSON")
	_ = check.MarkFlagRequired("config")
	keys.AddCommand(check, newKeysNewCmd())
	return keys
}

// keyLine is one venue's row of keys check.
type keyLine struct {
	venues.KeyReport
	Error string `json:"error,omitempty"`
}

func keysCheck(ctx context.Context, path string, asJSON bool, out io.Writer) error {
	cfg, err := configs.Load(path)
	if err != nil {
		return &exitError{exitBadConfig, err}
	}
	// A real exchange is asked in real time; a config of sims and fakes
	// keeps its virtual clock.
	var clk clock.Clock = clock.Wall{}
	if !anyLive(cfg) {
		if clk, err = newClock(cfg); err != nil {
			return &exitError{exitBadConfig, err}
		}
	}
	log, err := newLogger(cfg, io.Discard)
	if err != nil {
		return &exitError{exitBadConfig, err}
	}
	b, err := buildVenues(cfg, clk, log)
	if err != nil {
		return &exitError{exitBadConfig, err}
	}
	defer b.close()
	lines := make([]keyLine, len(cfg.Venues))
	code := 0
	for i, vc := range cfg.Venues {
		lines[i].Venue, lines[i].Kind = vc.Name, vc.Kind
		kc, ok := b.list[i].(keyChecker)
		if !ok {
			lines[i].Warnings = []string{"simulated venue: no key"}
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		rep, err := kc.CheckKey(cctx)
		cancel()
		rep.Venue, rep.Kind = vc.Name, vc.Kind
		lines[i].KeyReport = rep
		switch {
		case err != nil:
			lines[i].Error = err.Error()
			code = max(code, exitFailed)
		case rep.Refusal() != nil:
			lines[i].Error = rep.Refusal().Error()
			code = exitBadConfig
		}
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(lines); err != nil {
			return err
		}
	} else {
		writeKeyTable(out, lines)
	}
	if code != 0 {
		return &exitError{code, fmt.Errorf("keys check: not every key is fit to trade")}
	}
	return nil
}

// anyLive reports whether a config has a real exchange without a fake.
func anyLive(cfg *configs.Config) bool {
	for _, v := range cfg.Venues {
		if v.Real() && !v.Fake {
			return true
		}
	}
	return false
}

func writeKeyTable(out io.Writer, lines []keyLine) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VENUE\tKIND\tSTATUS\tLATENCY\tCLOCK SKEW\tPERMISSIONS\tWITHDRAW\tIP LOCK\tRATE LIMIT")
	yesNo := func(b *bool) string {
		switch {
		case b == nil:
			return "not reported"
		case *b:
			return "yes"
		}
		return "no"
	}
	for _, l := range lines {
		status := "ok"
		switch {
		case l.Error != "":
			status = "REFUSED"
			if !strings.Contains(l.Error, "withdraw") {
				status = "ERROR"
			}
		case l.Kind == configs.KindSim:
			status = "sim"
		}
		perms := strings.Join(l.Permissions, ", ")
		if perms == "" {
			perms = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Venue, l.Kind, status, l.Latency.Round(time.Millisecond),
			l.ClockSkew.Round(time.Millisecond), perms, yesNo(l.CanWithdraw), yesNo(l.IPRestricted), l.RateLimit)
	}
	_ = tw.Flush()
	for _, l := range lines {
		if l.Error != "" {
			fmt.Fprintf(out, "%s: %s\n", l.Venue, l.Error)
		}
		for _, w := range l.Warnings {
			if l.Kind != configs.KindSim {
				fmt.Fprintf(out, "%s: warning: %s\n", l.Venue, w)
			}
		}
	}
}

// newKeysNewCmd adds an API key for blockexec serve to a keys file.
func newKeysNewCmd() *cobra.Command {
	var file, client, id, secretOut string
	var scopes []string
	var rate float64
	cmd := &cobra.Command{
		Use:   "new --file KEYS --client NAME --scopes read,trade",
		Short: "Add an API key for blockexec serve to a keys file (made with mode 0600)",
		Long: `new makes a key for one client of blockexec serve: a fresh id and 32 random
bytes of secret, appended to the keys file (created with mode 0600; an
existing one must have that mode). The secret is written once to
--secret-out (mode 0600) for the client's operator, and never printed.

A client may hold several keys at once: add the new one, hand it over, and
delete the old entry from the file once the client has switched. A running
server reads the file again within a second of a change, and on SIGHUP; a
file it cannot load is logged and the keys in force stay. Nothing is written
unless the whole key is valid (id, client, scopes, rate, an id not yet in the
file), and each file is replaced whole. Scopes: read (see orders, fills, events), trade
(submit, pause, resume, amend, cancel), admin (the kill switch, and every
client's orders).`,
		Example: `  blockexec keys new --file data/serve-keys.yaml --client fund-a --scopes read,trade --secret-out fund-a.secret
  blockexec keys new --file data/serve-keys.yaml --client ops --scopes admin --secret-out ops.secret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kid, err := addKey(file, client, id, scopes, rate, secretOut)
			if err != nil {
				return &exitError{exitBadConfig, err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s for %s (%s) added to %s; its secret is in %s\n", kid, client,
				strings.Join(scopes, ", "), file, secretOut)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "the keys file of blockexec serve (service.keys_file)")
	cmd.Flags().StringVar(&client, "client", "", "the client the key speaks for: it sees and acts on that client's orders")
	cmd.Flags().StringVar(&id, "id", "", "the key's id (default <client>-<random>)")
	cmd.Flags().StringSliceVar(&scopes, "scopes", []string{"read"}, "read, trade, admin")
	cmd.Flags().Float64Var(&rate, "rate", 0, "requests a second (0: the server's default of 20)")
	cmd.Flags().StringVar(&secretOut, "secret-out", "", "where to write the secret (mode 0600) for the client")
	for _, f := range []string{"file", "client", "secret-out"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

// addKey appends a fresh key to a keys file and writes its secret apart.
// Everything is checked before any file is touched, and each file is
// replaced whole: a refused key leaves the keys file as it was and no
// secret file behind.
func addKey(file, client, id string, scopes []string, rate float64, secretOut string) (string, error) {
	if id == "" {
		id = client + "-" + randomToken()[:8]
	}
	if err := service.CheckKey(id, client, scopes, rate); err != nil {
		var ke *service.KeyError
		if errors.As(err, &ke) {
			flag := map[string]string{"id": "--id", "client": "--client", "rate_per_second": "--rate"}[ke.Field]
			if strings.HasPrefix(ke.Field, "scopes") {
				flag = "--scopes"
			}
			if flag != "" {
				return "", fmt.Errorf("%s: %s", flag, ke.Reason)
			}
		}
		return "", err
	}
	same, err := samePath(file, secretOut)
	if err != nil {
		return "", err
	}
	if same {
		return "", fmt.Errorf("--secret-out: %s is the keys file", secretOut)
	}
	var f struct {
		Keys []map[string]any `yaml:"keys"`
	}
	var b []byte
	if b, err = os.ReadFile(file); err == nil {
		if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("keys file %s has mode %04o: group or others can access it; chmod 600 it", file, fi.Mode().Perm())
		}
		// Add to a file serve would load, and not to one it refuses.
		ids, err := service.CheckKeys(file, b)
		if err != nil {
			return "", fmt.Errorf("%w (nothing was added: mend the file first)", err)
		}
		if slices.Contains(ids, id) {
			return "", fmt.Errorf("--id: %s already has a key %q", file, id)
		}
		if err := yaml.Unmarshal(b, &f); err != nil {
			return "", fmt.Errorf("keys file %s: not a keys file", file)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("keys file: %w", err)
	}
	secret := randomToken() + randomToken() // 32 random bytes, hex
	entry := map[string]any{"id": id, "client": client, "secret": secret, "scopes": scopes}
	if rate > 0 {
		entry["rate_per_second"] = rate
	}
	f.Keys = append(f.Keys, entry)
	b, err = yaml.Marshal(f)
	if err != nil {
		return "", err
	}
	// What is written must load, as serve will load it.
	if _, err := service.CheckKeys(file, b); err != nil {
		return "", err
	}
	// The secret goes to its own file first: a keys file without the
	// client's copy would be a key nobody can use.
	if err := writePrivate(secretOut, []byte(secret+"\n")); err != nil {
		return "", fmt.Errorf("--secret-out: %w", err)
	}
	if err := writePrivate(file, b); err != nil {
		_ = os.Remove(secretOut)
		return "", fmt.Errorf("keys file: %w", err)
	}
	return id, nil
}

// samePath reports whether two paths name one file (either may not exist).
func samePath(a, b string) (bool, error) {
	aa, err := filepath.Abs(a)
	if err != nil {
		return false, err
	}
	ab, err := filepath.Abs(b)
	if err != nil {
		return false, err
	}
	if aa == ab {
		return true, nil
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb), nil
}

// writePrivate replaces a file, which only its owner can read, atomically:
// a temporary file in the same directory, synced, then renamed over it.
func writePrivate(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename is durable once the directory is synced.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spf13/cobra"

	"github.com/blockexec/blockexec/api"
)

// exampleCommands returns an Example's command lines as words, lines
// continued with a backslash joined and a <placeholder> one word.
func exampleCommands(example string) [][]string {
	var cmds [][]string
	var words []string
	for _, line := range strings.Split(example, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		cont := strings.HasSuffix(line, `\`)
		for _, w := range strings.Fields(strings.TrimSuffix(line, `\`)) {
			if n := len(words); n > 0 && strings.HasPrefix(words[n-1], "<") && !strings.HasSuffix(words[n-1], ">") {
				words[n-1] += " " + w
				continue
			}
			words = append(words, w)
		}
		if !cont && len(words) > 0 {
			cmds, words = append(cmds, words), nil
		}
	}
	return cmds
}

// submitExamples are the order submit command lines of cmd's Example.
func submitExamples(t *testing.T, cmd *cobra.Command) [][]string {
	t.Helper()
	var out [][]string
	for _, words := range exampleCommands(cmd.Example) {
		if len(words) > 2 && words[0] == "blockexec" && words[1] == "order" && words[2] == "submit" {
			out = append(out, words)
		}
	}
	return out
}

// TestServeHelp_TheExampleOrderIsAccepted runs serve's example submit as
// written, with the key it made, against the example config served.
func TestServeHelp_TheExampleOrderIsAccepted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	examples := submitExamples(t, newServeCmd())
	if len(examples) != 1 {
		t.Fatalf("%d order submit examples in serve --help, want 1", len(examples))
	}
	sv := startServed(t)
	secret := filepath.Join(t.TempDir(), "fund-a.secret")
	if err := os.WriteFile(secret, append(sv.secrets["fund-a-1"], '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	args := examples[0][1:]
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--key-id":
			args[i+1] = "fund-a-1"
		case "--secret-file":
			args[i+1] = secret
		}
	}
	t.Setenv(envSecret, "")
	t.Setenv(envKeyID, "")
	t.Setenv(envURL, sv.url)
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatalf("blockexec %s: %v", strings.Join(args, " "), err)
	}
	if !strings.Contains(out.String(), " created\n") {
		t.Fatalf("blockexec %s:\n%s", strings.Join(args, " "), out.String())
	}
}

// TestOrderHelp_EverySubmitExampleGivesTheRequiredTerms: the service
// refuses an order without a participation cap or a band, so an example
// without them would be a 400.
func TestOrderHelp_EverySubmitExampleGivesTheRequiredTerms(t *testing.T) {
	o := &orderOpts{}
	n := 0
	for _, cmd := range []*cobra.Command{newOrderCmd(), newOrderSubmitCmd(o), newServeCmd()} {
		for _, words := range submitExamples(t, cmd) {
			line := strings.Join(words, " ")
			if strings.Contains(line, " -f ") {
				continue // the terms are in the file
			}
			n++
			for _, flag := range []string{"--id", "--side", "--symbol", "--qty", "--max-participation", "--band-bps"} {
				if !strings.Contains(line+" ", " "+flag+" ") {
					t.Errorf("%s --help: %q lacks %s", cmd.Name(), line, flag)
				}
			}
			if !strings.Contains(line, " --duration ") && !strings.Contains(line, " --end ") {
				t.Errorf("%s --help: %q lacks --duration or --end", cmd.Name(), line)
			}
		}
	}
	if n < 3 {
		t.Fatalf("%d submit examples with flags found, want 3", n)
	}
}

// TestOrderSubmit_SaysWhetherTheOrderWasThereBeforeThisCommand: a 200 at
// once is an order made before; a 200 after an attempt that got a 503 may
// be that attempt's, and the command says it cannot tell.
func TestOrderSubmit_SaysWhetherTheOrderWasThereBeforeThisCommand(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first       int // the first attempt's status; 0: the answer comes at once
		final       int
		want, never string
	}{
		{"created", 0, http.StatusCreated, "order unwind-1 created\n", "attempt"},
		{"created on a retry", http.StatusServiceUnavailable, http.StatusCreated, "created (on attempt 2)", "already"},
		{"there before", 0, http.StatusOK, "already existed before this command", "earlier attempt"},
		{"there before, after a 429", http.StatusTooManyRequests, http.StatusOK, "already existed before this command",
			"earlier attempt"},
		{"maybe the command's own", http.StatusServiceUnavailable, http.StatusOK,
			"the order id was already known to the server: it may be from an earlier attempt of this command", "existed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			svc := newOrderService(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				if n.Add(1) == 1 && tc.first != 0 {
					w.Header().Set("Retry-After", "0")
					orderAnswer(w, tc.first, api.ErrorBody{Error: api.Errorf(tc.first, api.CodeOf(tc.first), "not now")})
					return
				}
				orderAnswer(w, tc.final, testOrder("unwind-1", "working"))
			})
			out, err := runOrder(t, svc.url, "submit", "--id", "unwind-1", "--side", "sell", "--symbol", "BTCUSDT",
				"--qty", "400", "--duration", "8h", "--max-participation", "0.1", "--band-bps", "50")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tc.want) || strings.Contains(out, tc.never) {
				t.Fatalf("output:\n%s\nwant %q, not %q", out, tc.want, tc.never)
			}
		})
	}
}

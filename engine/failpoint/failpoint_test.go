package failpoint

import (
	"os"
	"os/exec"
	"testing"
)

// The armed point kills the process at its N-th hit, not before; others
// pass. The test runs itself as the process to kill.
func TestHit_KillsAtTheNthHit(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		for i := 1; i <= 5; i++ {
			Hit("other")
			Hit("p")
			os.Stdout.WriteString("passed " + string(rune('0'+i)) + "\n")
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHit_KillsAtTheNthHit$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", Env+"=p:3")
	out, err := cmd.Output()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.Success() {
		t.Fatalf("the process was not killed: %v\n%s", err, out)
	}
	if got := string(out); got != "passed 1\npassed 2\n" {
		t.Fatalf("output %q: the kill came at the wrong hit", got)
	}
}

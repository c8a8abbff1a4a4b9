package risk

import "go.uber.org/fx"

// Module provides a *Checker over a *KillSwitch. The caller supplies the
// *KillSwitch (its initial state comes from configuration).
var Module = fx.Module("risk",
	fx.Provide(NewChecker),
)

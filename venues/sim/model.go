package sim

// Model constants for callers that model the sim's costs (blockexec plan
// --calibrate). They are the sim's own values, not copies; see the package
// doc and DefaultImpactCoef, DefaultImpactHalfLife and DefaultDepthCoef.
const (
	// DepthExponent is a in D(x) = Share·k·x^a, the depth within x bps of
	// the mid.
	DepthExponent = depthExponent
	// GridBps is the target distance between price levels, in bps of the
	// start price.
	GridBps = gridBps
	// HalfSpreadBps is the mean distance from the mid to the touch: the
	// best level lies anywhere up to one grid step away, half on average.
	HalfSpreadBps = gridBps / 2
	// MaxLevels is how many levels a side of a venue's book holds: about
	// MaxLevels·GridBps bps of depth; nothing beyond it fills.
	MaxLevels = maxLevels
)

package readmodel

import "strconv"

// CounterKeys names the keys of one generation of a counting projection
// (the product analytics is one): per member (a product) a hash of
// counters, the set of the members, per cart the projection's own state,
// and the generation's meta. The keys carry the generation as the hash tag
// {g<N>}, so that every key one write touches lies in one slot of a Redis
// Cluster.
type CounterKeys struct {
	Prefix string
	// Projection is the projection's name, Counted what it counts (a
	// singular noun: "product").
	Projection, Counted string
	Generation          int
}

func (k CounterKeys) base() string {
	return k.Prefix + k.Projection + ":{g" + strconv.Itoa(k.Generation) + "}:"
}

// Meta is a hash describing the generation (AnalyticsFieldBuiltAt, …). It
// exists exactly while the generation is listed in the generations record:
// a write into a generation without it is refused.
func (k CounterKeys) Meta() string { return k.base() + "meta" }

// Members is the set of the member ids the generation has a hash for.
func (k CounterKeys) Members() string { return k.base() + k.Counted + "s" }

// Member is the hash of one member's counters.
func (k CounterKeys) Member(id string) string { return k.base() + k.Counted + ":" + id }

// Cart is the projection's own state of one cart (its version and what its
// rules remember); only the projector reads it.
func (k CounterKeys) Cart(cartID string) string { return k.base() + "cart:" + cartID }

// Pattern is the SCAN MATCH pattern of every key of the generation.
func (k CounterKeys) Pattern() string { return EscapeGlob(k.base()) + "*" }

// Generations is the hash saying which generations of a projection exist:
// AnalyticsCurrent (the one readers use; absent until the first build
// finished), AnalyticsBuilding, AnalyticsPrevious (kept up to date while
// readers drain off it) and AnalyticsDropping, numbered by
// AnalyticsSequence.
func Generations(prefix, projection string) string { return prefix + projection + ":generations" }

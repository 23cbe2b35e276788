// Package analytics keeps the product analytics projection: per product,
// what a CRUD cart cannot tell — how often it is added, removed by the
// customer or by the system, added but never bought, how often quantities go
// up or down, and how long it stays in a cart before the checkout or the
// removal. It runs inside the projector with its own durable consumer and
// its own keys in Redis, so it never slows down or couples with the cart
// documents; and a new generation of it is built from the whole event log,
// so that it answers for the history before it was deployed.
//
// # What is counted, per product
//
//   - added: item-added events. addedToCarts: distinct carts it was ever
//     added to.
//   - removedByCustomer, removedBySystem: item-removed events with reason
//     customer (or none) and product-unavailable.
//   - checkedOut: carts checked out with the product in them.
//     addedNeverCheckedOut = addedToCarts − checkedOut: carts that did not
//     buy it — it was removed before the checkout, or the cart is still open.
//   - quantityRaised, quantityLowered: item-quantity-changed events up and
//     down; an item-added onto a line the cart holds raises it too.
//   - dwell: a line's life begins when the product is added to a cart that
//     does not hold it (adding more to a line does not restart it) and ends
//     at its removal or at the checkout. Two distributions per product,
//     add→checkout and add→removal, as log-scale histograms
//     (readmodel.DwellGrowth: buckets 5% apart over milliseconds, some 540
//     for ten years, only those with counts stored), so their median and
//     90th percentile are within readmodel.DwellRelativeError (2.44%) of the
//     exact ones (durations are measured in whole milliseconds), whatever
//     the number of lines.
//   - name: from the latest item-added event (by time, then cart and
//     version, so the order the carts are projected in does not matter).
//
// A checked-out cart takes no more events (cart.Decide refuses them), and
// an event that cannot be decoded (an unknown schema version) advances its
// cart's version without counting; it is logged and counted in
// cart_analytics_events_undecodable_total. Fold holds these rules; it is
// pure, and the live consumer, the gap repair and the build all use it.
//
// # Per cart, incremental, idempotent
//
// Each generation keeps per cart the version folded so far, the open lines
// with their start times and the products ever added. A write reads a
// cart's state, folds its next events (an event at or below the version is
// a duplicate; one beyond the next version is a gap, filled from the event
// log in PostgreSQL first), and one Lua script stores the new state and
// adds the products' deltas — only if the cart is still at the version
// read (else it is read and folded again). Every cart is folded from its
// version 1 by whoever gets to it first, and the counters move only with
// the cart's version, so whatever order the live consumer and a build get
// to the events in, a generation ends as the fold of the whole log:
// redeliveries and duplicates change nothing.
//
// # Generations
//
// The keys carry a generation as a hash tag, <prefix>analytics:{g<N>}:…
// (readmodel.AnalyticsKeys), so in a Redis Cluster every key of a write —
// the generation's meta, its product set, the carts and the products —
// is in one slot. A record (readmodel.AnalyticsGenerations) lists the
// generation readers use (current), the one being built (building) and,
// while readers drain off it, the previous one; a generation's meta key
// exists exactly while it is listed, and the write script refuses a
// generation without it, so nothing recreates the keys of a dropped one.
//
// The live consumer reads the record after each fetch and applies the
// batch to every generation listed, each with its own compare-and-set. A
// build (one at a time over all projectors: a lock in Redis, renewed while
// it runs):
//
//  1. numbers a new generation n, creates its meta and lists it as
//     building (call that instant T0);
//  2. reads the whole log from PostgreSQL in (cart, version) order, in
//     pages (keyset pagination on the events' unique index), and brings
//     each cart of a page up to date in n with the same writes as the live
//     consumer;
//  3. notes when n was built and switches readers to it: current := n, and
//     the old current becomes previous, still written;
//  4. waits DrainWait (the query service caches the current generation for
//     up to a second), unlists the previous generation, deletes its meta —
//     from then on no write lands in it — and then its keys (SCAN +
//     UNLINK).
//
// Why nothing is missing from n. Take any event. If it was committed before
// T0, every page read — all of them start after T0 — sees it, and the
// page whose keys cover it brings its cart up to it (or finds the live
// consumer got there first). If it was committed after T0, the relay
// published it after T0, so the live consumer fetched it after T0 and read
// a record listing n: it applies it to n, filling any gap from the log.
// Redeliveries and the interleaving of both are harmless (above). A
// build that fails, or whose process stops, before the switch unlists n and
// drops it; what a build that died leaves behind (a generation building,
// draining or half dropped) is dropped by the next build, or by the check
// every projector runs every CheckEvery. That check also builds a
// generation whenever none is current — on the first deployment, or after
// Redis lost its data — from the whole history.
package analytics

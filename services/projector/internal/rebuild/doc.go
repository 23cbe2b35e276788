// Package rebuild fills a new generation of the cart documents from the
// event log in PostgreSQL (Rebuilder, an engine.Filler) while the live
// projectors keep serving the current one, and maps the documents'
// generations record onto the engine's (Generations): the engine's Builder
// runs the build — lock, switch, drain, drop — as for every projection.
//
// # The generation handshake
//
// Two Redis keys say which generations exist for whom: the current
// generation (readmodel.CurrentGeneration), which readers use, and the
// generations written, which every live projector keeps up to date. Every
// live write is one Lua call per cart that first compares both keys with
// what the projector read when it computed the write, and refuses it
// otherwise (projector.ErrStaleGenerations: the projector reads them
// again, reloads the cart and computes the write again). So once a key
// changes, no write computed from the old value lands, whichever
// instance computed it and however long it took.
//
// A rebuild from generation g to n = g+1 (engine.Builder drives it):
//
//  1. Takes the rebuild lock (one rebuild at a time, over all processes).
//  2. Writes "g,n" as the generations written (call that instant T0). From
//     T0 every live write lands in both g and n, atomically, each guarded
//     by its own version: n may be behind (the rebuild has not reached the
//     cart), and a gap there is filled from the event log like any gap.
//  3. Reads the log in position order, in large pages, up to the last
//     position committed when it starts reading, folds each cart and
//     merges it into n: a merge writes only when it takes the cart further
//     than what n holds (the live projectors may have got there first);
//     both are folds of the same log, so the further one is right.
//  4. Switches: one call sets the current generation to n and the
//     generations written to "n,g". Readers see either g or n, each whole.
//  5. Waits DrainWait (the readers cache the current generation for up to
//     a second) while the projectors still keep g up to date, then writes
//     "n" alone and deletes g's keys (SCAN + UNLINK, in batches).
//
// Why nothing is lost in n. Take any event. If a live projector applied it
// in a write that landed after T0, that write included n. Otherwise it was
// applied before T0 — and so committed to PostgreSQL before T0 (the relay
// publishes only committed events, and gaps are read from PostgreSQL) — or
// not at all yet, and then it will be, after T0, into n. The rebuild starts
// reading after T0, so it sees every event committed before T0 (all of
// them have a position up to the last one it sees then), even those whose
// position a slower transaction held back: a cart's later versions always
// have later positions, and a version the rebuild finds missing is read
// from the cart's stream. A write that lands after the switch in step
// 4 was computed for "n,g" or later, so it lands in n; one computed for
// "g,n" is refused and computed again. Parked events are in no generation
// until they are retried or skipped, which writes every generation written.
//
// # Merging without a script
//
// Almost every merge is of a cart n does not hold yet, and a script per
// cart was most of the rebuild's Redis time. So a cart's history entries
// are pushed, as the rebuild reads them, onto a list of the cart's own (its
// hash tag, in n, read by no one else: no guard needed), and when the cart
// is done (checked out, forgotten, or the log read) its hash is filled
// under a key of its own too, and both are renamed into place with
// RENAMENX, list first, which does nothing where the key exists. Both
// renamed: the cart is the rebuild's, whole (the list's length, returned by
// the last push, proves no entry is missing), and the customer index
// follows it — by a small script for an open cart, which sets it only while
// the cart is still at that version, and by SET NX of the customer's latest
// cart for a checked-out one, which takes no more events and which nobody
// pointed the index at. Otherwise a live projector got there first (or the
// list got there between the two renames, which a projector reads as a
// history out of step, and replaces): the merge script takes the staged
// entries and compares versions and history lengths as for any other cart.
// A live write never reads the rebuild's keys, and each rename is one
// command, so no interleaving of the two loses an event. A cart's merges
// go, in order, through the same one of the rebuild's writers.
//
// # Memory
//
// The rebuild streams the log: what it keeps is the carts it is folding
// (Config.MaxCarts of them at most, the rest read again from the log if
// they come back) and the history entries not written yet
// (Config.WriteBatch), encoded as the store keeps them.
package rebuild

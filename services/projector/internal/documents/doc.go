// Package documents is the projection of the denormalized cart documents
// (an engine.Projection): the engine hands it each batch of cart events,
// grouped by cart; it folds them onto the stored documents with the
// domain's own fold (cart.Evolve), repairs gaps from the event log in
// PostgreSQL, and reports an event done only once its effect is stored.
//
// Applying is idempotent and ordered per cart: an event at or below the stored
// version is a duplicate, the next version is applied, and a later one means a
// gap. Several projectors may share the durable consumer: the store refuses a
// write computed from a stale version (ErrConflict) and the cart is reloaded.
//
// Each write also appends the events it applied (repaired ones included), as
// stored, to the cart's history — the audit trail and the query service's
// time travel — in the same guarded step, so a duplicate never appends twice.
// A history found out of step with its document is rebuilt from the event
// log.
//
// # Generations
//
// The documents live in a generation (readmodel.Keys). Usually the
// projectors write one, the readers' current generation; while a rebuild
// fills the next one (package rebuild) they write both, each cart in both
// atomically, each generation guarded by its own version. A write computed
// for other generations than the store has now is refused
// (ErrStaleGenerations): the projector reads them again and recomputes.
//
// # Parked events
//
// An event that cannot be applied — it does not decode (an unknown schema
// version, say), or the Applier fails for it without ErrTransient — is
// retried like a gap until its message was delivered MaxDeliver times. Then
// it is parked with its error, and so is every later event of its cart,
// behind it and in order: the messages are acknowledged, the events are
// kept in the store, and the other carts keep flowing. Retry applies a
// cart's parked events again (those still failing stay parked); Skip drops
// the first one and applies the rest. A skipped version is recorded in the
// document (and its history entry marked), so the version is not a gap
// for later events, and a history or gap repair from the event log, where
// the event still is, passes over it instead of failing on it again.
//
// # Remembered carts
//
// A batch is mostly the next event of a cart this projector stored moments
// ago, so it remembers what it stored (Config.CacheSize carts) and folds
// onto that instead of reading the cart first. Why a remembered record can
// never make a wrong write: the write carries everything the fold read of
// it, and the store's guard compares each with what it holds — the
// generations written (a rebuild's start or switch), per generation the
// version, the history's length and the stamp (a digest of the document
// and its skipped versions as stored, so a forced replacement or a skip at
// any version is seen), and that the cart has no parked events (only
// carts without any are remembered). Anything else stored — by another
// instance, a rebuild, the admin API — is ErrConflict: the cart is
// forgotten, read again and folded again, as for any concurrent write. A
// remembered cart whose batch starts past its next version is read at
// once: another instance has written it since.
package documents

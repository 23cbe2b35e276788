// Package projector keeps the denormalized cart documents up to date from the
// event stream. It pulls cart events from a durable JetStream consumer in
// batches, folds them onto the stored documents with the domain's own fold
// (cart.Evolve), repairs gaps from the event log in PostgreSQL, and acks a
// message only once its effect is stored.
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
package projector

// Package analytics keeps the product analytics projection: per product,
// what a CRUD cart cannot tell — how often it is added, removed by the
// customer or by the system, added but never bought, how often quantities go
// up or down, and how long it stays in a cart before the checkout or the
// removal. It is a counting projection of the engine (engine.Rules): this
// package holds its rules, pure; the engine keeps each cart's state per
// generation under a version guard, repairs gaps, and builds a generation
// from the whole event log, so that it answers for the history before it
// was deployed (see package engine).
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
// cart_projection_events_undecodable_total. Fold holds these rules; the
// live writes, the gap repair and the builds all fold with it.
package analytics

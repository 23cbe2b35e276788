// Package cart is the shopping cart domain: its events, its state, the fold of
// events into state (Evolve) and the decision of which events a command
// produces (Decide).
//
// It is pure and shared: no I/O, no clock, standard library only. The command
// service decides with it, the projector denormalizes with the same fold, and
// the query service replays it for time travel — one fold, three users.
package cart

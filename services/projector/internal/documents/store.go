package documents

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// Generations is which generations of the read models the projectors keep
// up to date: the one readers use (Current) and, while a rebuild fills the
// next one or drains the previous one, one more. Token is the store's
// record of it as read; a Save computed from another Token is refused
// (ErrStaleGenerations), which is how a switch reaches every projector
// instance before its next write (see package rebuild).
type Generations struct {
	Current int
	Writes  []int
	Token   string
}

// Has reports whether the projectors write generation g.
func (g Generations) Has(gen int) bool { return slices.Contains(g.Writes, gen) }

// Doc is a cart's stored document in one generation as the fold needs it.
// Version 0 means the generation has nothing for the cart yet.
type Doc struct {
	Version int
	State   cart.State
	// HistoryLen is how many events the cart's history list holds: Version,
	// unless the list fell out of step with the document (it predates the
	// history, or was lost) and must be rebuilt from the event log.
	HistoryLen int
	// Skipped are the versions the document passed over (skipped poison
	// events), in order.
	Skipped []int
	// Corrupt is set when the stored document cannot be read; the cart is
	// left alone until `projector rebuild -cart` replaces it.
	Corrupt error
	// Stamp identifies the stored document Load read.
	Stamp Stamp
}

// Stamp identifies the bytes a store holds for a cart's document in one
// generation (its skipped versions included): a digest of them. A Write
// carrying the stamp of the document it was computed from is refused
// (ErrConflict) when anything else is stored, even at the same version —
// which is what lets a write be computed from a record remembered since
// the last batch instead of read again. The zero Stamp is none.
type Stamp [20]byte

// IsZero reports whether s is no stamp.
func (s Stamp) IsZero() bool { return s == Stamp{} }

// SkippedVersions are the versions any of docs passed over, in order: a
// version skipped in one generation is skipped in all.
func SkippedVersions(docs []Doc) []int {
	var out []int
	for _, d := range docs {
		for _, v := range d.Skipped {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Record is everything the store holds about one cart: its document in each
// generation the projectors write (in Generations.Writes order) and the
// events parked for it.
type Record struct {
	Docs   []Doc
	Parked []Parked
}

// Parked is an event the projector could not apply, or one of the same
// cart's later events waiting behind it.
type Parked struct {
	Event envelope.Envelope
	// Error is why the event could not be applied; for the events waiting
	// behind the first one, which event they wait for.
	Error string
	// Attempts is how often the projector tried: the deliveries of the
	// message when it was parked, plus each retry.
	Attempts      int
	FirstParkedAt time.Time
	LastAttemptAt time.Time
}

// Write asks the store to replace a cart's document in one generation with
// State, provided it still holds version From. Changed false means State is
// the stored state itself: nothing is written, but the indexes derived from
// it are made consistent again (a crash between a write and its ack leaves
// them behind).
//
// The cart's history list is written in the same atomic step, guarded the
// same way, so a duplicate never appends an event twice.
type Write struct {
	CartID  string
	From    int
	State   cart.State
	Changed bool
	// History is the entries to add to the cart's history list, in version
	// order: the ones State adds to From, preceded by versions 1..From when
	// ReplaceHistory is set.
	History []readmodel.HistoryEntry
	// HistoryLen is the length of the history list the write was computed
	// from (Doc.HistoryLen); like From, another length is ErrConflict.
	HistoryLen int
	// ReplaceHistory replaces the list instead of appending to it: it was
	// out of step with the document.
	ReplaceHistory bool
	// Skipped is the document's skipped versions after the write.
	Skipped []int
	// Stamp is the stamp of the document the write was computed from
	// (Doc.Stamp); like From, another is ErrConflict. Zero: not compared.
	Stamp Stamp
	// Force writes whatever is stored (no From, HistoryLen or Stamp
	// guard), and points the customer's open-cart index at the cart when
	// it is open: the cart was read whole from the event log (a
	// single-cart rebuild).
	Force bool
}

// Change is one atomic step on one cart: a write per generation (in
// Generations.Writes order; nil when no document changes) and changes to
// its parked events.
type Change struct {
	CartID string
	Writes []Write
	// ParkedLen is the number of parked events the change was computed
	// from; another number is ErrConflict. -1 skips the guard, and Park then
	// only appends the events after the last one parked.
	ParkedLen int
	// Unpark drops that many events from the front of the parked list.
	Unpark int
	// Head, when set, replaces the first parked event left after Unpark
	// (a retry that failed again).
	Head *Parked
	// Park appends events to the parked list, in version order.
	Park []Parked
}

// Saved is the store's answer to one Change.
type Saved struct {
	// Err is nil when the change was stored; otherwise ErrConflict,
	// ErrStaleGenerations or another error, and nothing was.
	Err error
	// Stamps are the stamps of the cart's documents once the change is
	// stored, one per Write.
	Stamps []Stamp
}

// ErrConflict is a Change's result when the stored document, history or
// parked events are no longer what it was computed from: another projector
// got there first.
var ErrConflict = errors.New("documents: cart changed concurrently")

// ErrStaleGenerations is a Change's result when the generations written
// changed since they were read: nothing was written.
var ErrStaleGenerations = errors.New("documents: read-model generations changed")

// Store holds the cart documents and the parked events.
type Store interface {
	// Generations reads which generations the projectors write.
	Generations(ctx context.Context) (Generations, error)
	// Load returns what is stored for the given carts in the generations
	// gens.Writes; absent carts are missing from the map.
	Load(ctx context.Context, gens Generations, cartIDs []string) (map[string]Record, error)
	// Save applies the changes and returns one result per change, or an
	// error when none could be tried.
	Save(ctx context.Context, gens Generations, changes []Change) ([]Saved, error)
	// ParkedCarts lists the carts that have parked events.
	ParkedCarts(ctx context.Context) ([]string, error)
	// ParkedEvents counts the parked events of every cart.
	ParkedEvents(ctx context.Context) (int, error)
}

package rebuild

import (
	"context"
	"log/slog"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/lease"
)

// Store is what a rebuild needs of the read-model store, besides what a
// projector needs.
type Store interface {
	documents.Store
	// SetGenerations sets the current generation and the generations
	// written, provided they are still from (else ErrStaleGenerations).
	SetGenerations(ctx context.Context, from documents.Generations, current int, writes []int) (documents.Generations, error)
	// AppendEntry appends a history entry to b as the store keeps it.
	AppendEntry(b []byte, h readmodel.HistoryEntry) ([]byte, error)
	// WriteMerges stores what the rebuild folded into generation gen: one
	// result per merge.
	WriteMerges(ctx context.Context, gen int, merges []Merge) ([]MergeResult, error)
	// StoredGenerations lists the generations that have keys.
	StoredGenerations(ctx context.Context) ([]int, error)
	// DropGeneration deletes every key of generation gen and returns how
	// many it deleted.
	DropGeneration(ctx context.Context, gen int) (int, error)
	// The rebuild lock: one rebuild at a time, over all processes.
	lease.Locker
}

// Merge is one cart as the rebuild folded it so far. Its history entries
// after Base, the version the rebuild placed in the generation before (0:
// none), are staged in the store as they come (Staged of them already),
// then placed with the document, once, when the cart is done.
type Merge struct {
	CartID string
	Base   int
	State  cart.State
	// Staged is how many entries after Base the store holds staged;
	// Entries are the next ones, encoded by Store.AppendEntry.
	Staged  int
	Entries [][]byte
	Skipped []int
	// Place stores the cart (State and the entries staged and given);
	// otherwise the entries are only staged.
	Place bool
	// Index asks for the customer's open-cart index to follow the cart:
	// its status changed since Base (a cart's status only moves forward,
	// so the index already follows it otherwise).
	Index bool

	// blocks hold the entries; released once they are written.
	blocks []*block
}

// MergeResult is what a Merge did.
type MergeResult int

const (
	// Merged: the cart was stored (or its entries staged).
	Merged MergeResult = iota
	// Behind: the generation had the cart at State's version or later.
	Behind
	// Reset: the stored cart is neither the rebuild's last write nor ahead
	// of it; the rebuild must store the cart whole.
	Reset
)

// Config tunes a rebuild.
type Config struct {
	// PageSize is how many events one read of the log returns (default
	// 20,000).
	PageSize int
	// WriteBatch is about how many history entries are folded before
	// those of carts still open are staged in the store (default 16,384):
	// it bounds the memory the entries waiting take (a few hundred bytes
	// each).
	WriteBatch int
	// MaxCarts is about how many carts the rebuild keeps folded in memory
	// (default 50,000): beyond it, those it has not seen for longest are
	// forgotten once written, and read again from the log if they come
	// back. It wants to be more than the carts a shop has open at once.
	MaxCarts int
	// Applier folds an event onto a cart (default: documents.Evolve's
	// fold, with a faster decoding of the current schema versions). The
	// envelope it is given is valid only during the call.
	Applier documents.Applier
}

func (c Config) withDefaults() Config {
	if c.PageSize <= 0 {
		c.PageSize = 20000
	}
	if c.WriteBatch <= 0 {
		c.WriteBatch = 16384
	}
	if c.MaxCarts <= 0 {
		c.MaxCarts = 50000
	}
	return c
}

// Rebuilder fills generations of the cart documents from the event log
// (engine.Filler).
type Rebuilder struct {
	cfg    Config
	store  Store
	log    engine.Log
	logger *slog.Logger
}

var _ engine.Filler = (*Rebuilder)(nil)

// New returns a Rebuilder.
func New(cfg Config, store Store, log engine.Log, logger *slog.Logger) *Rebuilder {
	return &Rebuilder{cfg: cfg.withDefaults(), store: store, log: log, logger: logger}
}

package documents

import (
	"strings"
	"sync"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// records remembers, for a bounded number of carts, the documents this
// projector last stored under the generations of token (see "Remembered
// carts" in the package documentation for why that is safe).
//
// The least recently used carts are forgotten first, approximately: the
// carts live in two maps, the recent one and the one before; when the
// recent one is full it becomes the one before, and the one before is
// dropped. A nil *records remembers nothing.
type records struct {
	mu     sync.Mutex
	half   int
	token  string
	recent map[string]string
	older  map[string]string
}

func newRecords(size int) *records {
	if size <= 0 {
		return nil
	}
	return &records{half: max(1, size/2), recent: map[string]string{}, older: map[string]string{}}
}

// get returns the documents remembered for the cart under the generations
// of token.
func (c *records) get(token, cartID string) ([]Doc, bool) {
	if c == nil {
		return nil, false
	}
	e, ok := c.entry(token, cartID)
	if !ok {
		return nil, false
	}
	return decodeDocs(cartID, e)
}

func (c *records) entry(token, cartID string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if token != c.token {
		return "", false
	}
	e, ok := c.recent[cartID]
	if !ok {
		if e, ok = c.older[cartID]; ok {
			delete(c.older, cartID)
			c.add(cartID, e)
		}
	}
	return e, ok
}

// put remembers the cart's documents as stored under the generations of
// token; records of other generations are forgotten.
func (c *records) put(token, cartID string, docs []Doc) {
	if c == nil {
		return
	}
	e, ok := encodeDocs(cartID, docs)
	c.mu.Lock()
	defer c.mu.Unlock()
	if token != c.token {
		c.token, c.recent, c.older = token, map[string]string{}, map[string]string{}
	}
	delete(c.older, cartID)
	if !ok {
		delete(c.recent, cartID)
		return
	}
	c.add(cartID, e)
}

// add puts an entry into the recent map, turning it into the one before
// when it is full. The cart id is copied: the caller's may share memory
// with a whole message.
func (c *records) add(cartID, e string) {
	if _, ok := c.recent[cartID]; !ok && len(c.recent) >= c.half {
		c.older, c.recent = c.recent, map[string]string{}
	}
	c.recent[strings.Clone(cartID)] = e
}

// drop forgets the cart.
func (c *records) drop(cartID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.recent, cartID)
	delete(c.older, cartID)
}

// len is how many carts are remembered.
func (c *records) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.recent) + len(c.older)
}

// remember keeps what a stored change left of a cart for its next batch,
// given the record it was computed from and the stamps the store returned.
// A cart with parked events is not kept, nor a checked-out one (it takes
// no more events), nor one whose documents have no stamp to guard a write
// with.
func (p *Projector) remember(gens Generations, cartID string, from Record, c Change, stamps []Stamp) {
	if p.cache == nil {
		return
	}
	if len(from.Parked) > 0 || c.Unpark > 0 || c.Head != nil || len(c.Park) > 0 ||
		len(c.Writes) != len(gens.Writes) || len(stamps) != len(c.Writes) {
		p.cache.drop(cartID)
		return
	}
	docs := make([]Doc, len(c.Writes))
	for i, w := range c.Writes {
		var d Doc
		if i < len(from.Docs) {
			d = from.Docs[i]
		}
		d = stored(d, w, stamps[i])
		if d.Stamp.IsZero() || d.Corrupt != nil || d.State.Status == cart.StatusCheckedOut {
			p.cache.drop(cartID)
			return
		}
		docs[i] = d
	}
	p.cache.put(gens.Token, cartID, docs)
}

// stored is the document d once w, computed from it, is stored, and the
// store gave it stamp.
func stored(d Doc, w Write, stamp Stamp) Doc {
	n := w.HistoryLen
	if w.ReplaceHistory {
		n = 0
	}
	n += len(w.History)
	if w.Changed {
		d = Doc{Version: w.State.Version, State: w.State, Skipped: w.Skipped}
	}
	d.HistoryLen, d.Stamp = n, stamp
	return d
}

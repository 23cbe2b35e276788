package relay

// cursor is where a leader's rounds start reading the outbox: every row at or
// below floor has been published (and removed, or is in toRemove), or was
// never committed and never will be. Reading from the floor instead of from the outbox's first
// row keeps a round from walking the index entries and heap tuples of rows
// already removed, which only VACUUM reclaims: on a busy outbox, and more so
// on a server whose autovacuum lags or is off, those are most of the table.
//
// Positions are taken when a transaction inserts its events and become
// visible when it commits, so a row may appear below rows already read (see
// readBatch). The floor therefore moves up only to a point no open
// transaction can still fill:
//
//  1. a round notes seq, the highest position taken so far (the sequence's
//     last value);
//  2. a later round takes a transaction id of its own, xid: every
//     transaction that took a position up to seq had its id before that
//     (an append's transaction writes the carts row before it numbers its
//     events), so its id is below xid. (A snapshot's xmax would not do: it
//     is one past the latest transaction to end, and ids above it that are
//     running are in no snapshot's list.)
//  3. a round whose snapshot's xmin has reached xid sees every one of those
//     transactions ended: its read returned every row up to seq that will
//     ever exist, and once they are published the floor moves to seq (or to
//     the last row read, when the round read a full batch; or to below the
//     lowest row whose publish failed, which the next round reads again).
//
// Only the round of step 2 takes an id, so the relay uses one in three
// rounds at most.
//
// A long-running transaction anywhere on the server holds xmin back and so
// the floor: rounds then read from further down, more slowly, never wrong.
// A new leader starts from zero.
type cursor struct {
	floor int64
	stage int // 0: nothing noted; 1: seq noted; 2: seq and xid noted
	seq   int64
	xid   int64
	// toRemove are the positions of rows published since the last removal:
	// the next round removes them before it reads. removeSeqs are their
	// stream sequences, in the same order.
	toRemove, removeSeqs []int64
}

// removed forgets the rows just removed.
func (c *cursor) removed() {
	c.toRemove, c.removeSeqs = c.toRemove[:0], c.removeSeqs[:0]
}

// horizon is what a round's read reports besides its rows: the sequence's
// last value (0 before the first position), its snapshot's xmin and, when
// the cursor asked for one (wantsXID), the transaction id the read took
// (64-bit ids).
type horizon struct {
	seq, xmin, xid int64
}

// wantsXID reports whether the next round's read must take a transaction id.
func (c *cursor) wantsXID() bool { return c.stage == 1 }

// advance moves the cursor after a round whose read reported h. lastRead is
// the highest position the round read (0 for none), full whether the read
// returned a whole batch, and lowestFailed the lowest position the round
// could not publish (0 for none).
func (c *cursor) advance(h horizon, lastRead int64, full bool, lowestFailed int64) {
	if c.stage == 2 && h.xmin >= c.xid {
		reach := c.seq
		if full {
			reach = min(reach, lastRead)
		}
		if lowestFailed > 0 {
			reach = min(reach, lowestFailed-1)
		}
		c.floor = max(c.floor, reach)
		if reach >= c.seq {
			c.stage = 0
		}
	}
	switch c.stage {
	case 0:
		c.seq, c.stage = h.seq, 1
	case 1:
		if h.xid != 0 {
			c.xid, c.stage = h.xid, 2
		}
	}
}

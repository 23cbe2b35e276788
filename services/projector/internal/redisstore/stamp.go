package redisstore

import (
	"crypto/sha1"
	"encoding/hex"

	"github.com/cart-cqrs/cart/services/projector/internal/documents"
)

// stamp is a document's documents.Stamp: the SHA-1 of its skipped field, a
// space and its JSON, as the hash holds them ("" where absent). The save
// scripts compute the same with redis.sha1hex from what is stored, so any
// writer — a rebuild, a forced replacement, an older projector — that
// changes either is seen, whatever it does to the version.
func stamp[T string | []byte](skipped string, doc T) documents.Stamp {
	var scratch [1024]byte
	b := append(scratch[:0], skipped...)
	b = append(b, ' ')
	b = append(b, doc...)
	return sha1.Sum(b)
}

// appendStamp appends the stamp a script compares the stored document with,
// in hex; nothing for the zero stamp, which the scripts do not compare.
func appendStamp(b []byte, s documents.Stamp) []byte {
	if s.IsZero() {
		return b
	}
	return hex.AppendEncode(b, s[:])
}

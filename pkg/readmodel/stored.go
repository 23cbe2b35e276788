package readmodel

// Stored is a cart hash as a reader gets it: the document as the projector
// wrote it, and the fields kept beside it so that a reader can check who
// may see it and which version it is without decoding it.
type Stored struct {
	// Doc is the Cart as JSON, byte for byte as written.
	Doc []byte
	// Version is FieldVersion; 0 when the hash lacks it.
	Version int
	// Owner is FieldOwner; "" when the document was written before it
	// existed.
	Owner string
}

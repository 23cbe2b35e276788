package cart

import "github.com/google/uuid"

// CanonicalID is the one rule both APIs read cart ids by: a UUID in its
// 36-character form, in any case (UUIDs are case-insensitive, RFC 9562 §4),
// returned in lower case, the form stored and answered. Other forms (braces,
// urn:uuid:, no hyphens) are not cart ids.
func CanonicalID(id string) (string, bool) {
	if len(id) != 36 {
		return "", false
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

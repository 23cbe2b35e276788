package httpapi

import (
	"encoding/json"
	"fmt"
)

// head is what a handler may need from a document besides its bytes.
type head struct {
	CustomerID string `json:"customerId"`
	Status     string `json:"status"`
	Version    int    `json:"version"`
}

// peekHead decodes only customerId, status and version of a stored
// document: the lines and the rest are skipped, not built.
func peekHead(raw []byte) (head, error) {
	var h head
	if err := json.Unmarshal(raw, &h); err != nil {
		return head{}, fmt.Errorf("httpapi: decode cart document: %w", err)
	}
	return h, nil
}

package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// ReadCart gets a cart from the query service as its customer does after a
// command: with ?minVersion, which the service waits for (bounded).
func (s *System) ReadCart(ctx context.Context, token, cartID string, minVersion int) (status int, body []byte, err error) {
	url := fmt.Sprintf("%s/v1/carts/%s?minVersion=%d", s.Query.URL(), cartID, minVersion)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := probe.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

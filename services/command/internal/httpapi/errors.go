package httpapi

import (
	"errors"
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
	"github.com/cart-cqrs/cart/services/command/internal/postgres"
)

// Problem codes of the command API beyond the domain's (cart.Error codes).
const (
	// CodeConcurrentModification (409): the command lost the race to other
	// writers on every attempt; retry.
	CodeConcurrentModification = "concurrent-modification"
	// CodeInvalidKey (400): the Idempotency-Key header is not 1 to 255
	// printable ASCII characters, or was sent twice.
	CodeInvalidKey = "invalid-idempotency-key"
	// CodeKeyReused (422): the Idempotency-Key was used for another request.
	CodeKeyReused = "idempotency-key-reused"
)

// problems is the one table from the write side's errors to what the client
// sees. The domain's refusals (cart.Error) and everything else go on as they
// are: the shared problem handler maps those.
var problems = []struct {
	err    error
	kind   problem.Kind
	code   string
	detail func(err error) string
}{
	{postgres.ErrConcurrentModification, problem.Conflict, CodeConcurrentModification, func(error) string {
		return "the cart was changed by another request at the same time; retry"
	}},
	{idempotency.ErrKeyReused, problem.Invalid, CodeKeyReused, keyReusedDetail},
}

// answer makes the errors of h that the table names problems.
func answer(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := h(c)
		if err == nil {
			return nil
		}
		for _, p := range problems {
			if errors.Is(err, p.err) {
				return &problem.Error{Kind: p.kind, Code: p.code, Detail: p.detail(err), Err: err}
			}
		}
		return err
	}
}

func keyReusedDetail(err error) string {
	var e *idempotency.KeyReusedError
	if errors.As(err, &e) && !e.OtherBody {
		return fmt.Sprintf("this Idempotency-Key was already used for %s %s; send a new key with a new request", e.Method, e.Path)
	}
	return "this Idempotency-Key was already used with a different request body; send a new key with a new request"
}

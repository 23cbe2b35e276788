package problem

// Error is an error that already knows how it should look to the client: a
// kind (hence a status), a stable machine-readable code and a human detail.
type Error struct {
	Kind   Kind
	Code   string // stable, e.g. "invalid-token"; defaults to the kind's code
	Detail string // shown to the client
	Err    error  // the cause, for logs; never shown for server-side kinds
}

// New returns a problem with an explicit detail for the client.
func New(kind Kind, code, detail string) *Error {
	return &Error{Kind: kind, Code: code, Detail: detail}
}

// Wrap classifies err. For client-side kinds (4xx) the detail is err's text,
// so wrap only errors whose text is written for the client. For server-side
// kinds (Internal, Unavailable) err's text stays in the logs: it names hosts,
// tables and queries the client has no business seeing.
func Wrap(kind Kind, code string, err error) *Error {
	p := &Error{Kind: kind, Code: code, Err: err}
	if err != nil && kind.Status() < 500 {
		p.Detail = err.Error()
	}
	return p
}

func (e *Error) code() string {
	if e.Code != "" {
		return e.Code
	}
	return e.Kind.String()
}

func (e *Error) Error() string {
	s := "problem: " + e.code()
	switch {
	case e.Err != nil:
		s += ": " + e.Err.Error()
	case e.Detail != "":
		s += ": " + e.Detail
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

package httpserver

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// net/http serves a request framed by both Content-Length and
// Transfer-Encoding by dropping Content-Length (RFC 9112 §6.3) before a
// handler can see it. Behind a proxy that framed it by Content-Length, the
// rest of the body is a second, smuggled request. framingConn follows the
// bytes a client sends, request by request, and notes which requests came
// with both headers; guardFraming tells the handler (the stack answers 400)
// and closes the connection after the answer, so nothing after the
// ambiguous body is read as a request.

type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c}, nil
}

type framingState int

const (
	inHeaders framingState = iota
	inBody
	inChunkSize
	inChunkData
	inChunkEnd
	inTrailers
	lost // the bytes no longer parse; net/http fails the request and closes
)

// maxFramingLine bounds a chunk-size or trailer line.
const maxFramingLine = 4 << 10

type framingConn struct {
	net.Conn

	mu        sync.Mutex
	state     framingState
	line      []byte // the header block, or a chunk-size or trailer line, so far
	remaining int64  // body or chunk bytes still to come
	ambiguous []bool // per request whose headers were read, oldest first
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.follow(p[:n])
		c.mu.Unlock()
	}
	return n, err
}

// CloseWrite half-closes a TCP connection, as net/http does after refusing
// a request, so that the client reads the answer before the connection ends.
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// nextAmbiguous reports whether the oldest request not yet asked about
// came with both Content-Length and Transfer-Encoding.
func (c *framingConn) nextAmbiguous() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ambiguous) == 0 {
		return false
	}
	a := c.ambiguous[0]
	c.ambiguous = c.ambiguous[1:]
	return a
}

func (c *framingConn) follow(b []byte) {
	for len(b) > 0 && c.state != lost {
		switch c.state {
		case inHeaders:
			b = c.headers(b)
		case inBody, inChunkData:
			n := min(int64(len(b)), c.remaining)
			c.remaining -= n
			b = b[n:]
			if c.remaining == 0 && c.state == inBody {
				c.state = inHeaders
			} else if c.remaining == 0 {
				c.state = inChunkEnd
			}
		case inChunkEnd: // the CRLF after a chunk's data
			if b[0] == '\n' {
				c.state = inChunkSize
			} else if b[0] != '\r' {
				c.state = lost
			}
			b = b[1:]
		case inChunkSize, inTrailers:
			var line []byte
			var ok bool
			if line, b, ok = c.nextLine(b); ok {
				c.chunkLine(line)
			}
		}
	}
}

// nextLine gathers b up to a '\n' into c.line; ok when the line is whole.
func (c *framingConn) nextLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		c.line = append(c.line, b...)
		if len(c.line) > maxFramingLine {
			c.state = lost
		}
		return nil, nil, false
	}
	line = bytes.TrimRight(append(c.line, b[:i]...), "\r")
	c.line = c.line[:0]
	return line, b[i+1:], true
}

func (c *framingConn) chunkLine(line []byte) {
	if c.state == inTrailers {
		if len(line) == 0 {
			c.state = inHeaders
		}
		return
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
	switch {
	case err != nil || size < 0:
		c.state = lost
	case size == 0:
		c.state = inTrailers
	default:
		c.state, c.remaining = inChunkData, size
	}
}

// headers gathers a request's header block; once whole, it notes whether
// the request is ambiguous and how its body is framed.
func (c *framingConn) headers(b []byte) []byte {
	start := max(0, len(c.line)-2) // the end may straddle two reads
	c.line = append(c.line, b...)
	end := blockEnd(c.line, start)
	if end < 0 {
		if len(c.line) > MaxHeaderBytes+maxFramingLine {
			c.state = lost
		}
		return nil
	}
	rest := b[len(b)-(len(c.line)-end):]
	block := c.line[:end]
	var lengths, encodings int
	var length int64
	var chunked bool
	_, lines, _ := bytes.Cut(block, []byte("\n")) // past the request line
	for len(lines) > 0 {
		var l []byte
		l, lines, _ = bytes.Cut(lines, []byte("\n"))
		name, value, ok := bytes.Cut(bytes.TrimRight(l, "\r"), []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			lengths++
			length, _ = strconv.ParseInt(string(value), 10, 64)
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			encodings++
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
	c.line = c.line[:0]
	c.ambiguous = append(c.ambiguous, lengths > 0 && encodings > 0)
	switch {
	case chunked:
		c.state = inChunkSize
	case encodings > 0 || length < 0:
		c.state = lost // net/http refuses it and closes
	case length > 0:
		c.state, c.remaining = inBody, length
	}
	return rest
}

type framingConnKey struct{}

type ambiguousFramingKey struct{}

// connContext gives each request's context its connection's framingConn.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingConnKey{}, fc)
	}
	return ctx
}

// guardFraming marks a request that came with both Content-Length and
// Transfer-Encoding (ambiguousHeaders refuses it) and closes its
// connection after the answer.
func guardFraming(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fc, ok := r.Context().Value(framingConnKey{}).(*framingConn); ok && fc.nextAmbiguous() {
			w.Header().Set("Connection", "close")
			r = r.WithContext(context.WithValue(r.Context(), ambiguousFramingKey{}, true))
		}
		h.ServeHTTP(w, r)
	})
}

func ambiguousFraming(r *http.Request) bool {
	a, _ := r.Context().Value(ambiguousFramingKey{}).(bool)
	return a
}

// blockEnd returns the index just past the empty line that ends the header
// block in b, searching from from; -1 if it has not come yet. Lines end in
// CRLF or, as net/http also accepts, a bare LF.
func blockEnd(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return i + 3
		}
	}
	return -1
}

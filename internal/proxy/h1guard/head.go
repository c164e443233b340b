package h1guard

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net/http"
)

// Rejection reasons, sent to the handler in the RejectHeader field.
const (
	reasonTooLarge    = "request header too large"
	reasonRequestLine = "malformed request line"
	reasonObsFold     = "obs-fold header line (starts with whitespace)"
	reasonCRNUL       = "CR or NUL inside header line"
	reasonNoColon     = "header line without colon"
	reasonEmptyName   = "empty header name"
	reasonSpaceColon  = "whitespace between header name and colon"
	reasonBadName     = "invalid header name"
	reasonBadValue    = "invalid character in header value"
	reasonCLAndTE     = "both Transfer-Encoding and Content-Length"
	reasonMultiCL     = "multiple Content-Length headers"
	reasonBadCL       = "Content-Length is not a decimal number"
	reasonMultiTE     = "multiple Transfer-Encoding headers"
	reasonBadTE       = "Transfer-Encoding other than chunked"
	reasonTE10        = "Transfer-Encoding in HTTP/1.0 request"
)

// fallbackRequestLine replaces a malformed request line in a rewritten head.
const fallbackRequestLine = "GET / HTTP/1.1"

// headInfo is what parseHead finds out about a complete request head.
type headInfo struct {
	reason  string // why the head is refused; "" if it is acceptable
	method  []byte
	length  uint64 // Content-Length, if any
	chunked bool   // Transfer-Encoding: chunked
	upgrade bool   // has an Upgrade field
	forged  bool   // has a RejectHeader field
}

// parseHead validates the complete request head h, which ends with its
// blank line.
func parseHead(h []byte) headInfo {
	var p headInfo
	line, rest, _ := nextLine(h)
	method, minor, ok := parseRequestLine(line)
	if !ok {
		return headInfo{reason: reasonRequestLine}
	}
	p.method = method
	var nCL, nTE int
	var badCL, badTE bool
	for {
		line, rest, _ = nextLine(rest)
		if len(line) == 0 {
			break
		}
		name, value, reason := splitField(line)
		if reason != "" {
			return headInfo{reason: reason}
		}
		switch {
		case equalFold(name, "content-length"):
			nCL++
			n, ok := parseLength(value)
			p.length = n
			badCL = badCL || !ok
		case equalFold(name, "transfer-encoding"):
			// Only "chunked" alone leaves no doubt about the framing.
			// net/http refuses any other single coding and more than
			// one field, but the guard names the problem.
			nTE++
			badTE = badTE || !equalFold(trimOWS(value), "chunked")
		case equalFold(name, "upgrade"):
			p.upgrade = true
		case equalFold(name, RejectHeader):
			p.forged = true
		}
	}
	switch {
	case nCL > 0 && nTE > 0:
		// net/http would silently drop Content-Length.
		p.reason = reasonCLAndTE
	case nCL > 1:
		// net/http accepts repeated equal values.
		p.reason = reasonMultiCL
	case badCL:
		p.reason = reasonBadCL
	case nTE > 1:
		p.reason = reasonMultiTE
	case badTE:
		p.reason = reasonBadTE
	case nTE == 1 && minor == '0':
		// net/http ignores Transfer-Encoding in HTTP/1.0 requests
		// (and so frames by Content-Length or as body-less), while
		// other parsers may honour it (RFC 9112, section 6.1).
		p.reason = reasonTE10
	}
	p.chunked = nTE == 1
	return p
}

// nextLine splits off the first line of b. As in net/textproto, a line ends
// at '\n' and a '\r' just before it is dropped. complete is false if b has
// no '\n'; line is then all of b.
func nextLine(b []byte) (line, rest []byte, complete bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil, false
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest, true
}

// parseRequestLine checks that line is method SP request-target SP
// "HTTP/1." DIGIT, with a token for method and a request-target free of
// control characters and spaces, and returns the method and minor version.
// net/http splits the line at its first two spaces in the same way.
func parseRequestLine(line []byte) (method []byte, minor byte, ok bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return nil, 0, false
	}
	method, rest := line[:sp], line[sp+1:]
	for _, b := range method {
		if !isTchar(b) {
			return nil, 0, false
		}
	}
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return nil, 0, false
	}
	target, proto := rest[:sp], rest[sp+1:]
	for _, b := range target {
		if b <= ' ' || b == 0x7f {
			return nil, 0, false
		}
	}
	if len(proto) != len("HTTP/1.x") || string(proto[:7]) != "HTTP/1." || proto[7] < '0' || proto[7] > '9' {
		return nil, 0, false
	}
	return method, proto[7], true
}

// splitField splits the header line line (not blank, line ending removed)
// into name and value, or says why it is unacceptable. net/textproto would
// fold a line starting with whitespace into the previous one and accepts a
// space before the colon (net/http then refuses the name).
func splitField(line []byte) (name, value []byte, reason string) {
	i := 0
	for i < len(line) && isTchar(line[i]) {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ':' {
		return nil, nil, fieldProblem(line)
	}
	name, value = line[:i], line[i+1:]
	if !validValue(value) {
		if bytes.IndexByte(value, '\r') >= 0 || bytes.IndexByte(value, 0) >= 0 {
			return nil, nil, reasonCRNUL
		}
		return nil, nil, reasonBadValue
	}
	return name, value, ""
}

// fieldProblem says what is wrong with the name part of the header line
// line, which is not a token followed by a colon.
func fieldProblem(line []byte) string {
	if line[0] == ' ' || line[0] == '\t' {
		return reasonObsFold
	}
	colon := bytes.IndexByte(line, ':')
	name := line[:max(colon, 0)]
	switch {
	case bytes.IndexByte(name, '\r') >= 0 || bytes.IndexByte(name, 0) >= 0,
		colon < 0 && (bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, 0) >= 0):
		return reasonCRNUL
	case colon < 0:
		return reasonNoColon
	case colon == 0:
		return reasonEmptyName
	case name[colon-1] == ' ' || name[colon-1] == '\t':
		return reasonSpaceColon
	}
	return reasonBadName
}

// parseLength parses a Content-Length value: optional whitespace around
// decimal digits, no sign, no list. At most 18 digits keep it below the
// 2^63 bound of net/http.
func parseLength(v []byte) (uint64, bool) {
	v = trimOWS(v)
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n uint64
	for _, b := range v {
		if b < '0' || b > '9' {
			return 0, false
		}
		n = n*10 + uint64(b-'0')
	}
	return n, true
}

// trimOWS removes leading and trailing spaces and tabs from v.
func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// equalFold reports whether b equals s, ignoring ASCII case only (as
// net/textproto does when canonicalising names; Unicode folding would let
// "ſ" match "s").
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		d := s[i]
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// Bitmaps of the tchar bytes of RFC 9110 (header names, methods), split at 64.
const (
	tcharLo uint64 = 1<<'!' | 1<<'#' | 1<<'$' | 1<<'%' | 1<<'&' | 1<<'\'' |
		1<<'*' | 1<<'+' | 1<<'-' | 1<<'.' | (1<<10-1)<<'0'
	tcharHi uint64 = (1<<26-1)<<('A'-64) | (1<<26-1)<<('a'-64) |
		1<<('^'-64) | 1<<('_'-64) | 1<<('`'-64) | 1<<('|'-64) | 1<<('~'-64)
)

func isTchar(b byte) bool {
	if b < 64 {
		return tcharLo&(1<<b) != 0
	}
	return b < 128 && tcharHi&(1<<(b-64)) != 0
}

// isValueByte reports whether b may appear in a header value: HTAB, SP,
// VCHAR or obs-text, as net/textproto checks.
func isValueByte(b byte) bool {
	return b >= ' ' && b != 0x7f || b == '\t'
}

// validValue reports whether every byte of v may appear in a header value.
// It tests eight bytes at a time for a byte below 0x20 or equal to 0x7f
// (the bit tricks "hasless" and "haszero", which never miss one) and only
// looks closer at the eight that might hold one, since HTAB is allowed.
func validValue(v []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(v) >= 8 {
		x := binary.LittleEndian.Uint64(v)
		d := x ^ (ones * 0x7f)
		if (x-ones*0x20)&^x&highs != 0 || (d-ones)&^d&highs != 0 {
			for _, b := range v[:8] {
				if !isValueByte(b) {
					return false
				}
			}
		}
		v = v[8:]
	}
	for _, b := range v {
		if !isValueByte(b) {
			return false
		}
	}
	return true
}

// appendWithoutReject appends the acceptable head h to dst, less its
// RejectHeader fields.
func appendWithoutReject(dst, h []byte) []byte {
	i := bytes.IndexByte(h, '\n') + 1
	dst = append(dst, h[:i]...) // request line
	for rest := h[i:]; len(rest) > 0; {
		line, next, _ := nextLine(rest)
		raw := rest[:len(rest)-len(next)]
		rest = next
		if colon := bytes.IndexByte(line, ':'); colon >= 0 && equalFold(line[:colon], RejectHeader) {
			continue
		}
		dst = append(dst, raw...)
	}
	return dst
}

// appendRejected appends to dst the head that stands in for the refused head
// h (complete reports whether h is all of it): its request line, or
// fallbackRequestLine if that is malformed, the RejectHeader field, a
// "Connection: close" field, then its well-formed fields except framing
// (Content-Length, Transfer-Encoding) and RejectHeader fields, and the blank
// line. The result is a body-less request that net/http can parse; should it
// not (say for a request-target that net/url refuses), a plainer version is
// used.
func appendRejected(dst, h []byte, complete bool, reason string) []byte {
	line, rest, ok := nextLine(h)
	if ok {
		_, _, ok = parseRequestLine(line)
	}
	start := len(dst)
	for try := 0; ; try++ {
		dst = dst[:start]
		if ok && try == 0 {
			dst = append(dst, line...)
		} else {
			dst = append(dst, fallbackRequestLine...)
		}
		dst = append(dst, "\r\n"+RejectHeader+": "...)
		dst = append(dst, reason...)
		dst = append(dst, "\r\nConnection: close\r\n"...)
		if try < 2 {
			dst = appendKeptFields(dst, rest, complete)
		}
		dst = append(dst, "\r\n"...)
		if try == 2 || parses(dst[start:]) {
			return dst
		}
	}
}

// appendKeptFields appends the header lines of rest that appendRejected
// keeps, each ending in CRLF. Unless complete, the last, partial line of rest
// is left out.
func appendKeptFields(dst, rest []byte, complete bool) []byte {
	for len(rest) > 0 {
		line, next, ok := nextLine(rest)
		rest = next
		if len(line) == 0 || !ok && !complete {
			break
		}
		name, _, reason := splitField(line)
		if reason != "" || equalFold(name, "content-length") ||
			equalFold(name, "transfer-encoding") || equalFold(name, RejectHeader) {
			continue
		}
		dst = append(dst, line...)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// parses reports whether net/http can read the request head h. It allocates
// and so is only used on the rejection path.
func parses(h []byte) bool {
	_, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(h)))
	return err == nil
}

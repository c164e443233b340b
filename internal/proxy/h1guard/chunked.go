package h1guard

// guardError is an error the guard's Read returns for a malformed body.
type guardError string

func (e guardError) Error() string { return string(e) }

// Errors for malformed chunked bodies.
const (
	errChunkSize    guardError = "h1guard: invalid chunk-size line in chunked request body"
	errChunkLong    guardError = "h1guard: chunk-size line too long in chunked request body"
	errChunkEnd     guardError = "h1guard: chunk data not followed by CRLF in chunked request body"
	errTrailer      guardError = "h1guard: malformed trailer field in chunked request body"
	errTrailerLarge guardError = "h1guard: trailer section too large in chunked request body"
)

// maxChunkLine bounds a chunk-size line with its extensions, as net/http's
// chunked reader does (4096 bytes with the CRLF).
const maxChunkLine = 4096

// chunkState is where in a chunked body a chunkReader is.
type chunkState uint8

const (
	csSize       chunkState = iota // chunk-size digits
	csSizeWS                       // whitespace after the digits
	csExt                          // chunk extensions
	csSizeLF                       // the '\n' ending the chunk-size line
	csData                         // chunk data
	csDataCR                       // the CRLF after chunk data
	csDataLF                       //
	csFieldStart                   // start of a trailer line, or the final CRLF
	csFinalLF                      // the '\n' of the final CRLF
	csFieldName                    // trailer field name
	csFieldValue                   // trailer field value
	csFieldLF                      // the '\n' after a '\r' in a trailer line
)

// chunkReader follows a chunked body (RFC 9112, section 7.1) byte by byte,
// without buffering, to find where it ends. Its rules match net/http's
// chunked reader where that one is strict, and are stricter elsewhere:
// chunk-size lines and the CRLF after chunk data must end in CRLF, and
// trailer lines follow the same rules as header lines (line ends as in
// net/textproto, no obs-fold, no whitespace before the colon).
type chunkReader struct {
	max    int // bound on the trailer section, as for heads
	state  chunkState
	digits int    // chunk-size digits seen
	size   uint64 // chunk size so far; chunk data bytes left in csData
	n      int    // bytes in the current chunk-size line or trailer section
}

// consume reads the chunked-body bytes at the start of p. It returns how many
// bytes belong to the body and whether the body ended with them.
func (cr *chunkReader) consume(p []byte) (n int, done bool, err error) {
	for n < len(p) {
		if cr.state == csData {
			k := uint64(len(p) - n)
			if k >= cr.size {
				k = cr.size
				cr.state = csDataCR
			}
			cr.size -= k
			n += int(k)
			continue
		}
		b := p[n]
		n++
		cr.n++
		switch cr.state {
		case csSize:
			if v, ok := unhex(b); ok {
				if cr.digits == 16 {
					return n, false, errChunkSize
				}
				cr.digits++
				cr.size = cr.size<<4 | uint64(v)
				break
			}
			if cr.digits == 0 {
				return n, false, errChunkSize
			}
			switch b {
			case ' ', '\t':
				cr.state = csSizeWS
			case ';':
				cr.state = csExt
			case '\r':
				cr.state = csSizeLF
			default:
				return n, false, errChunkSize
			}
		case csSizeWS:
			switch b {
			case ' ', '\t':
			case ';':
				cr.state = csExt
			case '\r':
				cr.state = csSizeLF
			default:
				return n, false, errChunkSize
			}
		case csExt:
			if b == '\r' {
				cr.state = csSizeLF
			} else if !isValueByte(b) {
				return n, false, errChunkSize
			}
		case csSizeLF:
			if b != '\n' {
				return n, false, errChunkSize
			}
			cr.n, cr.digits = 0, 0
			if cr.size == 0 {
				cr.state = csFieldStart
			} else {
				cr.state = csData
			}
		case csDataCR:
			if b != '\r' {
				return n, false, errChunkEnd
			}
			cr.state = csDataLF
		case csDataLF:
			if b != '\n' {
				return n, false, errChunkEnd
			}
			cr.state, cr.n = csSize, 0
		case csFieldStart:
			switch {
			case b == '\n':
				return n, true, nil
			case b == '\r':
				cr.state = csFinalLF
			case isTchar(b):
				cr.state = csFieldName
			default: // obs-fold, empty name, CR or NUL, ...
				return n, false, errTrailer
			}
		case csFinalLF:
			if b != '\n' {
				return n, false, errTrailer
			}
			return n, true, nil
		case csFieldName:
			if b == ':' {
				cr.state = csFieldValue
			} else if !isTchar(b) {
				return n, false, errTrailer
			}
		case csFieldValue:
			switch {
			case b == '\n':
				cr.state = csFieldStart
			case b == '\r':
				cr.state = csFieldLF
			case !isValueByte(b):
				return n, false, errTrailer
			}
		case csFieldLF:
			if b != '\n' {
				return n, false, errTrailer
			}
			cr.state = csFieldStart
		}
		if cr.state < csData && cr.n >= maxChunkLine {
			return n, false, errChunkLong
		}
		if cr.state >= csFieldStart && cr.n > cr.max {
			return n, false, errTrailerLarge
		}
	}
	return n, false, nil
}

// unhex returns the value of the hexadecimal digit b.
func unhex(b byte) (byte, bool) {
	switch {
	case '0' <= b && b <= '9':
		return b - '0', true
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10, true
	case 'A' <= b && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}

package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Writer appends records to a JSON Lines file. It is safe for concurrent use. Writes are
// buffered (64 KiB) and never fsynced; Close (or Flush) writes out what is buffered. A crash
// may leave a cut last line, which the Reader reports and skips, and the next Writer starts on
// a fresh line.
type Writer struct {
	mu  sync.Mutex
	f   *os.File
	bw  *bufio.Writer
	err error // the first write error; later records are dropped
	n   int
}

// Create opens path for appending (creating it, mode 0600), so a recording can grow across
// runs.
func Create(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	w := &Writer{f: f, bw: bufio.NewWriterSize(f, 64<<10)}
	// A previous run that died mid-line left no line end: start a new line, so the next
	// record is not glued onto the cut one.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			w.bw.WriteByte('\n')
		}
	}
	return w, nil
}

// line returns rec as one line of a recording, its line end included.
func line(rec *Record) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("replay: record %s: %w", rec.Key, err)
	}
	return append(b, '\n'), nil
}

// Record appends rec as one line. After a write error it returns that error and drops rec.
func (w *Writer) Record(rec *Record) error {
	b, err := line(rec)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.bw == nil {
		return errors.New("replay: writer closed")
	}
	if _, err := w.bw.Write(b); err != nil {
		w.err = fmt.Errorf("replay: write: %w", err)
		return w.err
	}
	w.n++
	return nil
}

// Count is the number of records written since Create.
func (w *Writer) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Flush writes out the buffered records.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bw == nil {
		return nil
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("replay: flush: %w", err)
	}
	return w.err
}

// Close flushes and closes the file. Later calls do nothing.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bw == nil {
		return nil
	}
	ferr := w.bw.Flush()
	cerr := w.f.Close()
	w.bw = nil
	if err := errors.Join(w.err, ferr, cerr); err != nil {
		return fmt.Errorf("replay: close: %w", err)
	}
	return nil
}

// LineError is a line of a recording that could not be read; the line is skipped.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Read parses records from r, one JSON object a line; blank lines are skipped. A line that is
// not a record (corrupt, or cut by a crash) is skipped and reported in bad; only a read error
// of r itself is returned as err.
func Read(r io.Reader) (recs []Record, bad []*LineError, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		b, rerr := br.ReadBytes('\n')
		if t := bytes.TrimSpace(b); len(t) > 0 {
			var rec Record
			if perr := parse(t, &rec); perr != nil {
				if rerr == io.EOF {
					perr = fmt.Errorf("%w (the last line has no line end: cut short?)", perr)
				}
				bad = append(bad, &LineError{Line: line, Err: perr})
			} else {
				recs = append(recs, rec)
			}
		}
		if rerr == io.EOF {
			return recs, bad, nil
		}
		if rerr != nil {
			return recs, bad, fmt.Errorf("replay: read line %d: %w", line, rerr)
		}
	}
}

// parse reads one line into rec and checks what replay needs.
func parse(line []byte, rec *Record) error {
	if err := json.Unmarshal(line, rec); err != nil {
		return fmt.Errorf("not a record: %w", err)
	}
	switch {
	case rec.Key == "":
		return errors.New("record without a key")
	case len(rec.Completion) == 0 || rec.Completion[0] != '{':
		return errors.New("record without a completion object")
	}
	return nil
}

// ReadFile reads the recording at path (see Read).
func ReadFile(path string) ([]Record, []*LineError, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	recs, bad, err := Read(f)
	if err != nil {
		return recs, bad, fmt.Errorf("%s: %w", path, err)
	}
	return recs, bad, nil
}

// Book is a loaded recording indexed by key. It is read-only and safe for concurrent use.
type Book struct {
	byKey   map[string]*Record
	all     []*Record // in file order, later duplicates replacing earlier ones
	streams []*Record // the streamed ones among all
}

// NewBook indexes recs by key; when a key repeats (a file appended across runs), the last
// record wins.
func NewBook(recs []Record) *Book {
	b := &Book{byKey: make(map[string]*Record, len(recs))}
	for i := range recs {
		r := &recs[i]
		b.byKey[r.Key] = r
	}
	for i := range recs {
		r := &recs[i]
		if b.byKey[r.Key] != r {
			continue
		}
		b.all = append(b.all, r)
		if r.Stream {
			b.streams = append(b.streams, r)
		}
	}
	return b
}

// Len is the number of distinct recorded requests.
func (b *Book) Len() int { return len(b.all) }

// Records are the distinct records in file order.
func (b *Book) Records() []*Record { return b.all }

// Lookup returns the record of key.
func (b *Book) Lookup(key string) (*Record, bool) {
	r, ok := b.byKey[key]
	return r, ok
}

// Pick draws a record for its timing: by seed (a hash of the request, say) from the streamed
// records when stream is set and there are some, else from all. Nil when the book is empty.
// The same seed picks the same record, so a synthetic answer's pacing is repeatable while
// different requests spread over the recorded latency distribution.
func (b *Book) Pick(seed uint64, stream bool) *Record {
	from := b.all
	if stream && len(b.streams) > 0 {
		from = b.streams
	}
	if len(from) == 0 {
		return nil
	}
	return from[seed%uint64(len(from))]
}

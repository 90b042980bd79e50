package replay

import (
	"bufio"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
)

// WriteFile replaces the file at path with recs, one line each (mode 0600, as os.CreateTemp makes it), and returns how
// many it wrote. It is atomic: the lines go to a temporary file in the same directory, which
// is synced and then renamed over path, so a crash or an error at any point leaves either the
// old file or the whole new one, never a cut one; on error the temporary file is removed.
// Every record must encode (a Completion that is not valid JSON is an error).
func WriteFile(path string, recs iter.Seq[*Record]) (n int, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	for rec := range recs {
		b, err := line(rec)
		if err != nil {
			return 0, err
		}
		if _, err := bw.Write(b); err != nil {
			return 0, fmt.Errorf("replay: write %s: %w", tmp, err)
		}
		n++
	}
	if err := errors.Join(bw.Flush(), f.Sync()); err != nil {
		return 0, fmt.Errorf("replay: write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("replay: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	syncDir(dir)
	return n, nil
}

// syncDir makes a rename in dir durable where the platform allows it (best effort: some
// systems cannot sync a directory, and the file itself is already complete).
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}

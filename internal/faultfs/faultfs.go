// Package faultfs is an in-memory diskqueue.FS for tests that models what a
// crash keeps and injects faults.
//
// Every file has two contents: what a reader sees now, and what survives a
// power cut (as of its last Sync). Every directory has two listings: now,
// and as of its last SyncDir. PowerCut returns a new FS holding only what
// would survive losing power now; ProcessCrash returns one holding
// everything written so far (the page cache survives kill -9).
//
// Faults: FailAfter makes the n-th mutating operation from now fail with
// EIO; LimitSpace makes writes fail with ENOSPC once the total bytes
// written reach a limit (the write that crosses it is torn: its first part
// is written). All methods are safe for concurrent use.
package faultfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/nsqx/nsqx/diskqueue"
)

// FS is the fault-injecting filesystem.
type FS struct {
	mu      sync.Mutex
	files   map[string]*node // current namespace
	durable map[string]*node // namespace as of the last SyncDir of each dir
	dirs    map[string]bool

	opsLeft   int   // <0: no fault; 0: next mutating op fails
	spaceLeft int64 // <0: unlimited
	used      int64
}

type node struct {
	data   []byte
	synced []byte
}

// New returns an empty FS.
func New() *FS {
	return &FS{files: map[string]*node{}, durable: map[string]*node{}, dirs: map[string]bool{}, opsLeft: -1, spaceLeft: -1}
}

// FailAfter makes the n-th mutating operation from now (0: the next one)
// fail with EIO, once. A negative n clears it.
func (fs *FS) FailAfter(n int) {
	fs.mu.Lock()
	fs.opsLeft = n
	fs.mu.Unlock()
}

// LimitSpace lets at most n more bytes be written; negative is unlimited.
func (fs *FS) LimitSpace(n int64) {
	fs.mu.Lock()
	fs.spaceLeft = n
	fs.mu.Unlock()
}

func (fs *FS) fault() error {
	if fs.opsLeft < 0 {
		return nil
	}
	if fs.opsLeft == 0 {
		fs.opsLeft = -1
		return &os.PathError{Op: "fault", Path: "", Err: syscall.EIO}
	}
	fs.opsLeft--
	return nil
}

// PowerCut returns what survives losing power now: synced contents of the
// files in synced directory listings.
func (fs *FS) PowerCut() *FS {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := New()
	for d := range fs.dirs {
		n.dirs[d] = true
	}
	for name, f := range fs.durable {
		c := &node{data: append([]byte(nil), f.synced...)}
		c.synced = append([]byte(nil), c.data...)
		n.files[name] = c
		n.durable[name] = c
	}
	return n
}

// ProcessCrash returns what survives kill -9: everything written.
func (fs *FS) ProcessCrash() *FS {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := New()
	for d := range fs.dirs {
		n.dirs[d] = true
	}
	for name, f := range fs.files {
		c := &node{data: append([]byte(nil), f.data...)}
		c.synced = append([]byte(nil), c.data...)
		n.files[name] = c
		n.durable[name] = c
	}
	return n
}

// Bytes returns a file's current content (for tests that damage files).
func (fs *FS) Bytes(name string) ([]byte, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, ok := fs.files[filepath.Clean(name)]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), f.data...), true
}

// Names lists every file, sorted.
func (fs *FS) Names() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []string
	for n := range fs.files {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (fs *FS) MkdirAll(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for d := filepath.Clean(dir); d != "." && d != "/"; d = filepath.Dir(d) {
		fs.dirs[d] = true
	}
	return nil
}

func (fs *FS) List(dir string) ([]string, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	dir = filepath.Clean(dir)
	seen := map[string]bool{}
	for name := range fs.files {
		if filepath.Dir(name) == dir {
			seen[filepath.Base(name)] = true
		}
	}
	for d := range fs.dirs {
		if filepath.Dir(d) == dir {
			seen[filepath.Base(d)] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

func (fs *FS) Create(name string) (diskqueue.File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.fault(); err != nil {
		return nil, err
	}
	name = filepath.Clean(name)
	n := &node{}
	fs.files[name] = n
	return &file{fs: fs, name: name, n: n}, nil
}

func (fs *FS) Open(name string) (diskqueue.File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	name = filepath.Clean(name)
	n, ok := fs.files[name]
	if !ok {
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
	}
	return &file{fs: fs, name: name, n: n}, nil
}

func (fs *FS) ReadFile(name string) ([]byte, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, ok := fs.files[filepath.Clean(name)]
	if !ok {
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
	}
	return append([]byte(nil), n.data...), nil
}

func (fs *FS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.fault(); err != nil {
		return err
	}
	name = filepath.Clean(name)
	if _, ok := fs.files[name]; !ok {
		return &os.PathError{Op: "remove", Path: name, Err: os.ErrNotExist}
	}
	delete(fs.files, name)
	return nil
}

func (fs *FS) RemoveAll(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	dir = filepath.Clean(dir)
	for name := range fs.files {
		if name == dir || strings.HasPrefix(name, dir+string(filepath.Separator)) {
			delete(fs.files, name)
		}
	}
	for d := range fs.dirs {
		if d == dir || strings.HasPrefix(d, dir+string(filepath.Separator)) {
			delete(fs.dirs, d)
		}
	}
	return nil
}

func (fs *FS) Rename(oldname, newname string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.fault(); err != nil {
		return err
	}
	oldname, newname = filepath.Clean(oldname), filepath.Clean(newname)
	n, ok := fs.files[oldname]
	if !ok {
		return &os.PathError{Op: "rename", Path: oldname, Err: os.ErrNotExist}
	}
	delete(fs.files, oldname)
	fs.files[newname] = n
	return nil
}

// SyncDir makes the directory's current listing durable.
func (fs *FS) SyncDir(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.fault(); err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	for name := range fs.durable {
		if filepath.Dir(name) == dir {
			if _, ok := fs.files[name]; !ok {
				delete(fs.durable, name)
			}
		}
	}
	for name, n := range fs.files {
		if filepath.Dir(name) == dir {
			fs.durable[name] = n
		}
	}
	return nil
}

type file struct {
	fs     *FS
	name   string
	n      *node
	closed bool
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, os.ErrClosed
	}
	if err := f.fs.fault(); err != nil {
		return 0, err
	}
	want := p
	var err error
	if f.fs.spaceLeft >= 0 {
		if int64(len(p)) > f.fs.spaceLeft {
			p = p[:f.fs.spaceLeft] // torn: only what fits
			err = &os.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
		}
		f.fs.spaceLeft -= int64(len(p))
	}
	end := off + int64(len(p))
	if end > int64(len(f.n.data)) {
		f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
	}
	copy(f.n.data[off:], p)
	f.fs.used += int64(len(p))
	if err != nil {
		return len(p), err
	}
	return len(want), nil
}

func (f *file) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	if err := f.fs.fault(); err != nil {
		return err
	}
	f.n.synced = append(f.n.synced[:0], f.n.data...)
	return nil
}

func (f *file) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if size < int64(len(f.n.data)) {
		f.n.data = f.n.data[:size]
	}
	return nil
}

func (f *file) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return int64(len(f.n.data)), nil
}

func (f *file) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	f.closed = true
	return nil
}

var _ diskqueue.FS = (*FS)(nil)
var _ = errors.New

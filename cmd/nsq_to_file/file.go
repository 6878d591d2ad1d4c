package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nsqio/go-nsq"
)

// maxRev bounds the search for a free <REV>.
const maxRev = 1_000_000

// fileConfig is what a fileLogger needs from the options.
type fileConfig struct {
	format         string // file name with <TOPIC>, <HOST> and <PID> replaced
	datetimeFormat string
	outputDir      string
	workDir        string
	gzip           bool
	gzipLevel      int
	rotateSize     int64
	rotateInterval time.Duration
	syncInterval   time.Duration
	skipEmpty      bool
	maxInFlight    int
}

// fileLogger writes one topic's messages to files. Its loop goroutine owns
// the files and the pending messages; the consumer's handler only hands
// messages over. A message is finished only after the file it was written
// to has been fsynced: after --sync-interval, when max-in-flight messages
// are pending, when the consumer is starved for more, on rotation and at
// exit.
type fileLogger struct {
	cfg      fileConfig
	topic    string
	channel  string
	log      *slog.Logger
	consumer *nsq.Consumer
	now      func() time.Time

	msgs chan *nsq.Message // handler → loop; unbuffered
	quit chan struct{}     // closed when loop returns; the handler then requeues
	hup  chan struct{}     // SIGHUP: close the current file

	// Owned by loop.
	f        *os.File
	bw       *bufio.Writer
	gz       *gzip.Writer
	w        io.Writer // gz or bw
	name     string    // current name: format with <DATETIME> replaced
	rev      int
	path     string // the open file, in workDir
	opened   time.Time
	size     int64 // bytes in the file, counting uncompressed bytes written
	written  int64 // bytes written since the file was opened
	dirty    bool  // written to since the last sync
	members  int   // gzip members completed in this file
	pending  []*nsq.Message
	stopping bool
}

func newFileLogger(cfg fileConfig, topic, channel string, consumer *nsq.Consumer, log *slog.Logger) *fileLogger {
	l := &fileLogger{
		cfg:      cfg,
		topic:    topic,
		channel:  channel,
		log:      log.With("topic", topic, "channel", channel),
		consumer: consumer,
		now:      time.Now,
		msgs:     make(chan *nsq.Message),
		quit:     make(chan struct{}),
		hup:      make(chan struct{}, 1),
		pending:  make([]*nsq.Message, 0, cfg.maxInFlight),
	}
	consumer.AddHandler(l)
	return l
}

// HandleMessage hands m to the loop, which answers it.
func (l *fileLogger) HandleMessage(m *nsq.Message) error {
	m.DisableAutoResponse()
	select {
	case l.msgs <- m:
	case <-l.quit:
		m.RequeueWithoutBackoff(0)
	}
	return nil
}

// run writes messages until ctx ends and the consumer has stopped, then
// syncs, finishes the last messages and closes the file. On a write error
// it requeues what it has not synced and returns the error; the caller
// still stops the consumer.
func (l *fileLogger) run(ctx context.Context) (err error) {
	defer close(l.quit)
	defer func() {
		if err != nil {
			for _, m := range l.pending {
				m.RequeueWithoutBackoff(0)
			}
			l.pending = l.pending[:0]
			if l.f != nil {
				l.f.Close()
			}
		}
	}()
	ticker := time.NewTicker(l.cfg.syncInterval)
	defer ticker.Stop()
	done := ctx.Done()
	for {
		select {
		case <-done:
			done = nil
			l.stopping = true
			l.consumer.Stop()
			// go-nsq closes each connection once its messages are answered.
			if err := l.sync(); err != nil {
				return err
			}
		case <-l.consumer.StopChan:
			// Every handler has returned: nothing more can arrive.
			return l.closeFile()
		case <-l.hup:
			if err := l.closeFile(); err != nil {
				return err
			}
		case <-ticker.C:
			if l.needsRotation() {
				if l.cfg.skipEmpty {
					err = l.closeFile()
				} else {
					err = l.rotate()
				}
				if err != nil {
					return err
				}
			}
			if err := l.sync(); err != nil {
				return err
			}
		case m := <-l.msgs:
			if err := l.write(m); err != nil {
				return err
			}
			// Take whatever else is ready before deciding to sync, so a
			// burst shares one fsync.
			for more := true; more && len(l.pending) < cap(l.pending); {
				select {
				case m := <-l.msgs:
					if err := l.write(m); err != nil {
						return err
					}
				default:
					more = false
				}
			}
			// While stopping, answer at once (see above).
			if len(l.pending) >= cap(l.pending) || l.stopping || l.consumer.IsStarved() {
				if err := l.sync(); err != nil {
					return err
				}
			}
		}
	}
}

// write appends m's body and a newline to the current file, rotating
// first if needed.
func (l *fileLogger) write(m *nsq.Message) error {
	if l.needsRotation() {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.w.Write(m.Body)
	if err == nil {
		_, err = l.w.Write([]byte{'\n'})
		n++
	}
	l.size += int64(n)
	l.written += int64(n)
	l.dirty = true
	if err != nil {
		return fmt.Errorf("write %s: %w", l.path, err)
	}
	l.pending = append(l.pending, m)
	return nil
}

// sync makes everything written durable and then finishes the pending
// messages. A gzip file gets its current member closed, so that the file
// is valid gzip (a series of members) after every sync.
func (l *fileLogger) sync() error {
	if l.f != nil && l.dirty {
		if l.gz != nil {
			if err := l.gz.Close(); err != nil {
				return fmt.Errorf("gzip %s: %w", l.path, err)
			}
			l.members++
			l.gz.Reset(l.bw)
		}
		if err := l.bw.Flush(); err != nil {
			return fmt.Errorf("write %s: %w", l.path, err)
		}
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", l.path, err)
		}
		l.dirty = false
		l.log.Debug("synced", "file", l.path, "messages", len(l.pending))
	}
	for i, m := range l.pending {
		m.Finish()
		l.pending[i] = nil
	}
	l.pending = l.pending[:0]
	return nil
}

// currentName is the file name for now, <REV> not yet replaced.
func (l *fileLogger) currentName() string {
	return strings.ReplaceAll(l.cfg.format, "<DATETIME>", strftime(l.cfg.datetimeFormat, l.now()))
}

func (l *fileLogger) needsRotation() bool {
	switch {
	case l.f == nil:
		return true
	case l.currentName() != l.name:
		return true
	case l.cfg.rotateInterval > 0 && l.now().Sub(l.opened) > l.cfg.rotateInterval:
		return true
	case l.cfg.rotateSize > 0 && l.size > l.cfg.rotateSize:
		return true
	}
	return false
}

// rotate closes the current file, if any, and opens the next.
func (l *fileLogger) rotate() error {
	if err := l.closeFile(); err != nil {
		return err
	}
	return l.open()
}

// withRev is name with <REV> replaced for revision rev.
func withRev(name string, rev int) string {
	return strings.ReplaceAll(name, "<REV>", fmt.Sprintf("-%06d", rev))
}

// open opens the file for the current name: a new revision when the name is
// unchanged since the last file, and past any revision that exists in the
// output directory, cannot be created exclusively (gzip or
// --rotate-interval) or is already over --rotate-size.
func (l *fileLogger) open() error {
	name := l.currentName()
	if name == l.name {
		l.rev++
	} else {
		l.rev = 0
	}
	l.name = name
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if l.cfg.gzip || l.cfg.rotateInterval > 0 {
		flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	}
	for ; l.rev < maxRev; l.rev++ {
		rel := withRev(name, l.rev)
		path := filepath.Join(l.cfg.workDir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o770); err != nil {
			return err
		}
		if l.cfg.workDir != l.cfg.outputDir {
			out := filepath.Join(l.cfg.outputDir, rel)
			if err := os.MkdirAll(filepath.Dir(out), 0o770); err != nil {
				return err
			}
			if _, err := os.Lstat(out); err == nil {
				continue // taken in the output directory
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		f, err := os.OpenFile(path, flags, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		if l.cfg.rotateSize > 0 && fi.Size() > l.cfg.rotateSize {
			f.Close()
			continue
		}
		if fi.Size() == 0 {
			// Make the new directory entry durable too.
			if err := syncDir(filepath.Dir(path)); err != nil {
				f.Close()
				return err
			}
		}
		l.f, l.path, l.opened = f, path, l.now()
		l.size, l.written, l.dirty, l.members = fi.Size(), 0, false, 0
		l.bw = bufio.NewWriterSize(f, 64<<10)
		l.w = l.bw
		if l.cfg.gzip {
			l.gz, err = gzip.NewWriterLevel(l.bw, l.cfg.gzipLevel)
			if err != nil {
				f.Close()
				return err
			}
			l.w = l.gz
		}
		l.log.Info("opened file", "file", path)
		return nil
	}
	return fmt.Errorf("no free revision for %s", filepath.Join(l.cfg.workDir, name))
}

// closeFile syncs the current file, finishes its messages, closes it and
// moves it to the output directory. A file that stayed empty is removed
// under --skip-empty-files.
func (l *fileLogger) closeFile() error {
	if l.f == nil {
		return l.sync()
	}
	if l.gz != nil && l.members == 0 && !l.dirty {
		// No member yet: write an empty one so the file is valid gzip.
		l.dirty = true
	}
	if err := l.sync(); err != nil {
		return err
	}
	f, path := l.f, l.path
	l.f, l.gz, l.bw, l.w = nil, nil, nil, nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if l.cfg.skipEmpty && l.size == 0 {
		l.log.Info("removing empty file", "file", path)
		return os.Remove(path)
	}
	if l.cfg.workDir == l.cfg.outputDir {
		l.log.Info("closed file", "file", path)
		return nil
	}
	return l.move(path)
}

// move moves a finished file from the work directory to the same relative
// name in the output directory, never replacing a file there: on a clash
// it takes the next free revision.
func (l *fileLogger) move(src string) error {
	rel, err := filepath.Rel(l.cfg.workDir, src)
	if err != nil {
		return err
	}
	dst := filepath.Join(l.cfg.outputDir, rel)
	for rev := l.rev + 1; ; rev++ {
		err := exclusiveRename(src, dst)
		if err == nil {
			l.log.Info("moved file", "file", src, "to", dst)
			return syncDir(filepath.Dir(dst))
		}
		if !errors.Is(err, fs.ErrExist) || rev >= maxRev || !strings.Contains(l.name, "<REV>") {
			return fmt.Errorf("move %s to %s: %w", src, dst, err)
		}
		l.log.Warn("output file exists", "file", dst)
		dst = filepath.Join(l.cfg.outputDir, withRev(l.name, rev))
	}
}

// exclusiveRename renames src to dst, failing with fs.ErrExist rather than
// replacing dst. A hard link does that atomically; where links are not
// supported, it checks and renames.
func exclusiveRename(src, dst string) error {
	err := os.Link(src, dst)
	switch {
	case err == nil:
		return os.Remove(src)
	case errors.Is(err, fs.ErrExist):
		return err
	}
	if _, serr := os.Lstat(dst); serr == nil {
		return fs.ErrExist
	}
	return os.Rename(src, dst)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

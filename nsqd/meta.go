package nsqd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/nsqx/nsqx/internal/version"
	"github.com/nsqx/nsqx/wire"
)

// metadata is nsqd.dat, in NSQ's JSON shape, so NSQ and nsqx can read each
// other's.
type metadata struct {
	Topics  []topicMeta `json:"topics"`
	Version string      `json:"version"`
}

type topicMeta struct {
	Name     string        `json:"name"`
	Paused   bool          `json:"paused"`
	Channels []channelMeta `json:"channels"`
	// PausedAt is where a paused topic holds its channels (nsqx only;
	// NSQ ignores the field).
	PausedAt uint64 `json:"nsqx_paused_at,omitempty"`
}

type channelMeta struct {
	Name   string `json:"name"`
	Paused bool   `json:"paused"`
}

const metaFile = "nsqd.dat"

// metadata builds nsqd.dat's content; ephemeral topics and channels are
// left out.
func (s *Server) metadata() metadata {
	md := metadata{Topics: []topicMeta{}, Version: version.Compat}
	for _, t := range s.topicList() {
		if t.ephemeral {
			continue
		}
		tm := topicMeta{Name: t.name, Paused: t.Paused(), Channels: []channelMeta{}}
		if tm.Paused {
			tm.PausedAt = t.pausedAt.Load()
		}
		for _, c := range t.channelList() {
			if c.ephemeral {
				continue
			}
			tm.Channels = append(tm.Channels, channelMeta{Name: c.name, Paused: c.Paused()})
		}
		md.Topics = append(md.Topics, tm)
	}
	return md
}

// loadMetadata recreates the topics and channels in nsqd.dat. A file that
// cannot be parsed is an error naming it: starting empty would silently
// forget topics.
func (s *Server) loadMetadata() error {
	path := filepath.Join(s.cfg.DataPath, metaFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var md metadata
	if err := json.Unmarshal(b, &md); err != nil {
		return fmt.Errorf("metadata file %s is corrupt (%v); move it aside to start without it", path, err)
	}
	for _, tm := range md.Topics {
		if !wire.ValidName(tm.Name) || wire.IsEphemeral(tm.Name) {
			s.log.Warn("skipping invalid topic in metadata", "topic", tm.Name)
			continue
		}
		t := newTopic(tm.Name, s.cfg, s.scanner, s.hooks)
		s.topics[tm.Name] = t
		if tm.Paused {
			t.pausedAt.Store(tm.PausedAt) // 0: unknown, settled by loadStore
			t.paused.Store(true)
		}
		for _, cm := range tm.Channels {
			if !wire.ValidName(cm.Name) || wire.IsEphemeral(cm.Name) {
				s.log.Warn("skipping invalid channel in metadata", "topic", tm.Name, "channel", cm.Name)
				continue
			}
			c := newChannel(t, cm.Name, t.log.tail.Load())
			c.paused = cm.Paused
			t.channels[cm.Name] = c
		}
		t.snapshotLocked()
	}
	return nil
}

// metaWriter writes nsqd.dat in the background, coalescing bursts of
// changes (a client creating many topics costs one write per burst, not one
// fsync per topic). Writes are atomic: temp file, fsync, rename, fsync of
// the directory.
type metaWriter struct {
	dir   string
	log   *slog.Logger
	dirty chan func() metadata
	mu    sync.Mutex // serialises writes
}

func newMetaWriter(dir string, log *slog.Logger) *metaWriter {
	return &metaWriter{dir: dir, log: log, dirty: make(chan func() metadata, 1)}
}

func (m *metaWriter) mark(build func() metadata) {
	select {
	case m.dirty <- build:
	default:
	}
}

func (m *metaWriter) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case build := <-m.dirty:
			if err := m.writeNow(build()); err != nil {
				m.log.Error("writing metadata failed", "err", err)
			}
		}
	}
}

func (m *metaWriter) writeNow(md metadata) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := json.Marshal(md)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(m.dir, metaFile), b)
}

// writeFileAtomic replaces path with b so that a crash leaves the old or
// the new content, never a mix.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

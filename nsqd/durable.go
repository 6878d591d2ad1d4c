package nsqd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nsqx/nsqx/diskqueue"
	"github.com/nsqx/nsqx/wire"
)

// storeRoot is where topics' logs live: <data-path>/nsqx/<topic>/.
func (s *Server) storeRoot() string { return filepath.Join(s.cfg.DataPath, "nsqx") }

func (s *Server) newStore(topic string) *logStore {
	if wire.IsEphemeral(topic) {
		return nil
	}
	return &logStore{
		fs:         s.fs,
		dir:        filepath.Join(s.storeRoot(), topic),
		durable:    s.cfg.MemQueueSize == 0,
		syncEvery:  s.cfg.SyncEvery,
		memLimit:   s.cfg.MemQueueSize,
		maxPayload: int(s.cfg.MaxMsgSize) + payloadHeader + 8,
		log:        s.log.With("topic", topic),
		spiller:    s.spiller,
	}
}

func (s *Server) storeFailed(err error) {
	msg := "NOK - " + err.Error()
	s.health.Store(&msg)
	s.log.Error("storing messages failed", "err", err)
}

func (s *Server) storeOK() {
	if h := s.health.Load(); *h != "OK" {
		ok := "OK"
		s.health.CompareAndSwap(h, &ok)
	}
}

// syncLoop fsyncs what was written but not yet synced, and saves channel
// progress in durable mode, every --sync-timeout.
func (s *Server) syncLoop(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.SyncTimeout)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, t := range s.topicList() {
			st := t.log.store
			if st == nil {
				continue
			}
			if err := st.syncIfPending(); err != nil {
				s.storeFailed(err)
			}
			if err := t.saveChannelsIfDurable(); err != nil {
				s.log.Error("saving channel progress failed", "topic", t.name, "err", err)
			}
		}
	}
}

func (t *Topic) saveChannelsIfDurable() error {
	if st := t.log.store; st == nil || !st.durable {
		return nil
	}
	return t.saveChannels()
}

// openJournal opens (creating) a channel's REQ journal for appending.
func (st *logStore) openJournal(name string) (segFile, int64, error) {
	if err := st.fs.MkdirAll(st.dir); err != nil {
		return nil, 0, err
	}
	p := journalFile(st.dir, name)
	f, err := st.fs.Open(p)
	if err != nil {
		if f, err = st.fs.Create(p); err != nil {
			return nil, 0, err
		}
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, size - size%journalEntry, nil
}

// saveChannels writes every non-ephemeral channel's progress.
func (t *Topic) saveChannels() error {
	st := t.log.store
	if st == nil {
		return nil
	}
	var errs []error
	if err := t.saveDeferredIndex(); err != nil {
		errs = append(errs, err)
	}
	for _, c := range t.channelList() {
		if c.ephemeral {
			continue
		}
		if err := c.saveState(st.fs, st.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// flushAll is the last step of a clean shutdown: every topic's messages
// reach disk and every channel's progress (in flight, requeued, deferred
// with due times) is saved.
func (s *Server) flushAll() error {
	var errs []error
	for _, t := range s.topicList() {
		st := t.log.store
		if st == nil {
			continue
		}
		t.mu.Lock()
		if err := st.flushAll(t.log); err != nil {
			errs = append(errs, fmt.Errorf("topic %s: %w", t.name, err))
		}
		t.mu.Unlock()
		if err := t.saveChannels(); err != nil {
			errs = append(errs, fmt.Errorf("topic %s: %w", t.name, err))
		}
		for _, c := range t.channelList() {
			c.closeJournal()
		}
		st.closeFiles(t.log)
	}
	return errors.Join(errs...)
}

// removeFiles deletes a deleted topic's directory.
func (t *Topic) removeFiles() {
	if st := t.log.store; st != nil {
		st.closeFiles(t.log)
		if err := st.fs.RemoveAll(st.dir); err != nil {
			st.log.Warn("removing topic files failed", "err", err)
		}
	}
}

// removeChannelFile deletes a deleted channel's progress and journal.
func (t *Topic) removeChannelFile(name string) {
	if st := t.log.store; st != nil {
		st.fs.Remove(chanFile(st.dir, name))
		st.fs.Remove(journalFile(st.dir, name))
	}
}

// loadStores opens each topic's log and each channel's progress. Topic
// directories without an entry in nsqd.dat (a crash before it was written)
// are loaded too, with the channels their progress files name.
func (s *Server) loadStores() error {
	names, err := s.fs.List(s.storeRoot())
	if err != nil {
		return err
	}
	for _, n := range names {
		if !wire.ValidName(n) || wire.IsEphemeral(n) || s.topics[n] != nil {
			continue
		}
		t := newTopic(n, s.cfg, s.scanner, s.hooks)
		s.topics[n] = t
		files, _ := s.fs.List(filepath.Join(s.storeRoot(), n))
		for _, f := range files {
			if c, ok := strings.CutSuffix(f, ".chan"); ok && wire.ValidName(c) && t.channels[c] == nil {
				t.channels[c] = newChannel(t, c, 1)
			}
		}
		t.snapshotLocked()
		s.log.Warn("recovered topic missing from metadata", "topic", n)
	}
	var errs []error
	for _, t := range s.topics {
		if err := t.loadStore(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// loadStore opens the topic's segments and restores its channels.
func (t *Topic) loadStore() error {
	st := t.log.store
	if st == nil {
		return nil
	}
	if err := st.open(t.log); err != nil {
		return fmt.Errorf("topic %s: %w", t.name, err)
	}
	head, tail := t.log.headSeq(), t.log.tail.Load()
	t.created = head
	t.loadDeferredIndex(head, tail)
	if t.paused.Load() {
		if p := t.pausedAt.Load(); p == 0 || p > tail {
			t.pausedAt.Store(tail)
		}
	}
	for _, c := range t.channelList() {
		c.cursor, c.base = head, head
		if b, err := st.fs.ReadFile(chanFile(st.dir, c.name)); err == nil {
			if err := c.restoreState(b, head, tail); err != nil {
				st.log.Error("channel progress unreadable; redelivering everything retained", "channel", c.name, "err", err)
			}
		}
		if j, err := st.fs.ReadFile(journalFile(st.dir, c.name)); err == nil && len(j) > 0 {
			if bad := c.replayJournal(j, head, tail); bad > 0 {
				st.log.Warn("damaged REQ journal entries skipped", "channel", c.name, "count", bad)
			}
			// The next progress save holds the replayed deferrals and
			// must empty the journal (it only does with the journal
			// open), or every start replays it again: messages FINed
			// since come back.
			if f, off, err := st.openJournal(c.name); err == nil {
				c.journal, c.journalOff = f, off
			}
			c.version++
		}
	}
	return nil
}

// The DPUB index (Topic.dpub) lets /stats count a deferred message that no
// cursor has reached as deferred. It is saved with channel progress to
// <topic>/dpub (pairs of seq and due, LE, then a CRC-32C) so the count
// survives a restart; if the file is missing or damaged the messages still
// wait for their due time, /stats just counts them as depth until reached.
const dpubFile = "dpub"

func (t *Topic) saveDeferredIndex() error {
	st := t.log.store
	t.mu.Lock()
	head := t.log.headSeq()
	b := make([]byte, 0, 16*len(t.dpub)+4)
	for _, p := range t.dpub {
		if p.seq >= head {
			b = binary.LittleEndian.AppendUint64(b, p.seq)
			b = binary.LittleEndian.AppendUint64(b, uint64(p.due))
		}
	}
	t.mu.Unlock()
	name := filepath.Join(st.dir, dpubFile)
	if len(b) == 0 {
		if err := st.fs.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	b = binary.LittleEndian.AppendUint32(b, diskqueue.Checksum(b))
	if err := st.fs.MkdirAll(st.dir); err != nil {
		return err
	}
	return diskqueue.WriteFileAtomic(st.fs, name, b)
}

func (t *Topic) loadDeferredIndex(head, tail uint64) {
	st := t.log.store
	b, err := st.fs.ReadFile(filepath.Join(st.dir, dpubFile))
	if err != nil || len(b) < 4 || (len(b)-4)%16 != 0 {
		return
	}
	body := b[:len(b)-4]
	if diskqueue.Checksum(body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		st.log.Warn("DPUB index damaged; /stats counts unreached deferred messages as depth", "file", filepath.Join(st.dir, dpubFile))
		return
	}
	for len(body) >= 16 {
		p := duePoint{seq: binary.LittleEndian.Uint64(body), due: int64(binary.LittleEndian.Uint64(body[8:]))}
		body = body[16:]
		if p.seq >= head && p.seq < tail && (len(t.dpub) == 0 || p.seq > t.dpub[len(t.dpub)-1].seq) {
			t.dpub = append(t.dpub, p)
		}
	}
}

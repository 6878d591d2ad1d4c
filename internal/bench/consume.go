package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nsqx/nsqx/wire"
)

var clsCommand = []byte("CLS\n")

// consumer FINs every message it receives on one subscribed connection.
type consumer struct {
	c   *client
	rdy int

	// delivered is shared by the consumers of a run; each adds its count
	// once per read batch, then calls onBatch (when set) with the new total.
	delivered *atomic.Int64
	finFailed *atomic.Int64
	onBatch   func(total int64)

	// lat, when set, receives the latency of every message whose body
	// starts with its send time in nanoseconds since base.
	lat  *[]int64
	base time.Time
}

// run sends RDY and consumes until ctx ends, then sends CLS and returns once
// the server answers CLOSE_WAIT, with every received message FIN-ed.
func (cs *consumer) run(ctx context.Context) error {
	c := cs.c
	// Stop is asked from outside the read loop: CLS goes out when ctx ends
	// and the loop ends when CLOSE_WAIT comes back.
	// The CLOSE_WAIT must come within the timeout, even if the server
	// keeps sending heartbeats or messages.
	clsDone := make(chan struct{})
	var stopBy atomic.Int64
	stop := context.AfterFunc(ctx, func() {
		defer close(clsDone)
		stopBy.Store(time.Now().Add(c.timeout).UnixNano())
		c.send(clsCommand)
	})
	defer func() {
		if !stop() {
			<-clsDone
		}
	}()

	if err := c.send([]byte("RDY " + strconv.Itoa(cs.rdy) + "\n")); err != nil {
		return fmt.Errorf("RDY: %w", err)
	}

	fin := []byte("FIN 0123456789abcdef\n")
	out := make([]byte, 0, writeBufferSize)
	var n, failed int64
	// flush sends the FINs gathered so far and publishes the counts; it
	// runs whenever the next frame is not buffered yet, just before the
	// read loop would wait for the network.
	flush := func() error {
		if by := stopBy.Load(); by != 0 && time.Now().UnixNano() > by {
			return fmt.Errorf("waiting for CLOSE_WAIT: %w", errNoReply)
		}
		if len(out) > 0 {
			c.wmu.Lock()
			c.w.Write(out)
			err := c.w.Flush()
			c.wmu.Unlock()
			out = out[:0]
			if err != nil {
				return fmt.Errorf("FIN: %w", err)
			}
		}
		if failed > 0 {
			cs.finFailed.Add(failed)
			failed = 0
		}
		if n > 0 {
			total := cs.delivered.Add(n)
			n = 0
			if cs.onBatch != nil {
				cs.onBatch(total)
			}
		}
		return nil
	}
	for {
		if !c.frameBuffered() {
			if err := flush(); err != nil {
				return err
			}
		}
		typ, data, err := c.readFrame()
		if err != nil {
			flush()
			if ctx.Err() != nil {
				return fmt.Errorf("waiting for CLOSE_WAIT: %w", err)
			}
			return fmt.Errorf("consume: %w", err)
		}
		switch typ {
		case wire.FrameMessage:
			if len(data) < wire.MessageHeaderLength {
				return fmt.Errorf("consume: message frame of %d bytes", len(data))
			}
			if cs.lat != nil && len(data) >= wire.MessageHeaderLength+8 {
				sent := int64(binary.BigEndian.Uint64(data[wire.MessageHeaderLength:]))
				*cs.lat = append(*cs.lat, int64(time.Since(cs.base))-sent)
			}
			copy(fin[4:4+wire.IDLength], data[10:10+wire.IDLength])
			out = append(out, fin...)
			n++
		case wire.FrameResponse:
			switch {
			case isHeartbeat(data):
				out = append(out, nopCommand...)
			case bytes.Equal(data, wire.CloseWait):
				return flush()
			}
		case wire.FrameError:
			if !bytes.HasPrefix(data, []byte(wire.ErrFinFailed)) {
				flush()
				return fmt.Errorf("consume: %w", &serverError{string(data)})
			}
			failed++
		default:
			return fmt.Errorf("consume: unknown frame type %d", typ)
		}
	}
}

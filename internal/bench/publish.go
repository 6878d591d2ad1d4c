package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nsqx/nsqx/wire"
)

// messageBody returns a body of size bytes. The content is printable so a
// message shown by a debugging tool is readable.
func messageBody(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// mpubCommand builds "MPUB topic\n" with n bodies of size bytes.
func mpubCommand(topic string, n, size int) []byte {
	body := messageBody(size)
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = body
	}
	return wire.AppendCommand(nil, "MPUB", wire.AppendMPUBBody(nil, bodies), topic)
}

// batch is one pre-built publish command and the messages it carries.
type batch struct {
	cmd  []byte
	msgs int64
}

// grant hands out batches to publishers: next blocks until a batch may be
// sent and returns false when publishing is over.
type grant func(ctx context.Context) (batch, bool)

// untilDone grants b until ctx ends.
func untilDone(b batch) grant {
	return func(ctx context.Context) (batch, bool) { return b, ctx.Err() == nil }
}

// countBudget grants batches of b until total messages have been granted;
// the last batch is shortened to fit.
func countBudget(topic string, b batch, size int, total int64) grant {
	var granted atomic.Int64
	return func(ctx context.Context) (batch, bool) {
		if ctx.Err() != nil {
			return batch{}, false
		}
		end := granted.Add(b.msgs)
		start := end - b.msgs
		switch {
		case start >= total:
			return batch{}, false
		case end <= total:
			return b, true
		default: // only one publisher ever gets the remainder
			n := total - start
			return batch{cmd: mpubCommand(topic, int(n), size), msgs: n}, true
		}
	}
}

// gated wraps g so that a batch is granted only while the messages granted
// but not yet delivered (per channel) stay within backlog. It polls: the
// publishers wait only when consumers fall behind.
func gated(g grant, granted *atomic.Int64, delivered *atomic.Int64, channels int64, backlog int64) grant {
	return func(ctx context.Context) (batch, bool) {
		for granted.Load()-delivered.Load()/channels > backlog {
			if ctx.Err() != nil {
				return batch{}, false
			}
			time.Sleep(100 * time.Microsecond)
		}
		b, ok := g(ctx)
		if ok {
			granted.Add(b.msgs)
		}
		return b, ok
	}
}

// publish sends the batches granted by next on c, keeping up to depth of them
// unacknowledged, and adds each acknowledged batch's messages to acked. It
// returns once publishing is over and every sent batch is acknowledged.
func (c *client) publish(ctx context.Context, next grant, depth int, acked *atomic.Int64) error {
	// outstanding holds the message counts of unacknowledged batches, in
	// the order they were sent (responses come back in the same order).
	outstanding := make([]int64, 0, depth)
	done := false
	lastOK := time.Now()
	for {
		if !done && len(outstanding) < depth {
			b, ok := next(ctx)
			if ok {
				c.w.Write(b.cmd)
				if err := c.w.Flush(); err != nil {
					return fmt.Errorf("publish: %w", err)
				}
				outstanding = append(outstanding, b.msgs)
				continue
			}
			done = true
		}
		if len(outstanding) == 0 {
			return nil
		}
		typ, data, err := c.readFrame()
		if err != nil {
			return fmt.Errorf("publish: waiting for OK: %w", err)
		}
		switch {
		case typ == wire.FrameResponse && bytes.Equal(data, wire.OK):
			acked.Add(outstanding[0])
			outstanding = append(outstanding[:0], outstanding[1:]...)
			lastOK = time.Now()
		case typ == wire.FrameResponse && isHeartbeat(data):
			if time.Since(lastOK) > c.timeout {
				return fmt.Errorf("publish: %w", errNoReply)
			}
			c.w.Write(nopCommand)
			if err := c.w.Flush(); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
		case typ == wire.FrameError:
			return fmt.Errorf("publish: %w", &serverError{string(data)})
		default:
			return fmt.Errorf("publish: unexpected frame type %d: %q", typ, data)
		}
	}
}

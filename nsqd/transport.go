package nsqd

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"

	"github.com/klauspost/compress/flate"

	"github.com/nsqx/nsqx/wire"
)

// layers is a connection's transport stack: the raw socket, TLS over it
// once negotiated, and snappy or deflate over that. IDENTIFY changes it, in
// the read loop with wmu held; the pump only writes through out.
//
// Without TLS or compression out is the socket itself, so the message path
// (writer, writeMessages, flush) costs nothing extra.
type layers struct {
	rw         net.Conn      // the socket, then the *tls.Conn over it
	out        io.Writer     // what w writes to: rw, or a compressor over rw
	fw         *flate.Writer // deflate only: flushed after every flush of w
	cbuf       *bufio.Writer // compression only: gathers the compressor's output
	compressed bool          // snappy or deflate is on (read loop only)
	isTLS      atomic.Bool   // read by exec on every command

	// For /stats, guarded by conn.imu.
	tlsState *tls.ConnectionState
	snappyOn bool
	deflOn   bool
}

// upgrade answers a feature-negotiating IDENTIFY that turned on TLS or
// compression, in NSQ's order: the JSON reply in the clear; then, if TLS,
// the handshake and OK over TLS; then, if compression, OK inside the
// compressed stream. The read side is rebuilt over the new layers; the
// client cannot have sent anything meanwhile, since it has to read the
// reply to learn what was accepted.
func (c *conn) upgrade(reply []byte, useTLS, useSnappy, useDeflate bool, level int) *wire.Error {
	if c.r.Buffered() > 0 {
		return wire.Fatal(wire.ErrIdentifyFailed, "IDENTIFY failed data sent before the upgrade")
	}
	if c.compressed || (useTLS && c.isTLS.Load()) {
		return wire.Fatal(wire.ErrIdentifyFailed, "IDENTIFY failed "+errUpgraded.Error())
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	failed := func(err error) *wire.Error {
		return wire.Fatal(wire.ErrIdentifyFailed, "IDENTIFY failed "+err.Error())
	}
	if err := c.sendLocked(wire.FrameResponse, reply); err != nil {
		return failed(err)
	}
	if useTLS {
		c.log.Debug("upgrading connection to TLS")
		if err := c.upgradeTLS(); err != nil {
			c.log.Info("TLS handshake failed", "err", err)
			return failed(err)
		}
		if err := c.sendLocked(wire.FrameResponse, wire.OK); err != nil {
			return failed(err)
		}
	}
	var in io.Reader = c.rw
	switch {
	case useSnappy:
		c.log.Debug("upgrading connection to snappy")
		in = c.upgradeSnappy()
	case useDeflate:
		c.log.Debug("upgrading connection to deflate", "level", level)
		var err error
		if in, err = c.upgradeDeflate(level); err != nil {
			return failed(err)
		}
	}
	if useSnappy || useDeflate {
		if err := c.sendLocked(wire.FrameResponse, wire.OK); err != nil {
			return failed(err)
		}
	}
	c.r = bufio.NewReaderSize(in, readBufferSize)
	return nil
}

// setOutput points the output buffer at out. The buffer is empty: every
// frame sent during an upgrade is flushed. Caller holds wmu.
func (c *conn) setOutput(out io.Writer, fw *flate.Writer) {
	c.out, c.fw = out, fw
	if c.w != nil {
		c.w.Reset(out)
	}
}

// compressedSink returns the writer a compressor writes to: a buffer over
// the transport, flushed at the end of flushOut. Compressors write their
// output in small pieces (a snappy stream identifier, chunk headers, a
// deflate sync marker); without it each piece would be a write of its own
// (a TLS record of its own under TLS), and some clients (pynsq over
// tornado 6) fail on a read that decompresses to nothing. Caller holds wmu.
func (c *conn) compressedSink() io.Writer {
	c.cbuf = bufio.NewWriterSize(c.rw, compressedSinkSize)
	return c.cbuf
}

// compressedSinkSize bounds the buffer of compressedSink; larger writes
// pass straight through.
const compressedSinkSize = 8 << 10

// flushOut flushes the output buffer and, with deflate, the compressor
// behind it, so that every flush ends a batch the client can decode.
// Caller holds wmu.
func (c *conn) flushOut() error {
	if err := c.w.Flush(); err != nil {
		return err
	}
	if c.fw != nil {
		if err := c.fw.Flush(); err != nil {
			return err
		}
	}
	if c.cbuf != nil {
		return c.cbuf.Flush()
	}
	return nil
}

package nsqd

import (
	"io"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
)

// Compression, as NSQ negotiates it in IDENTIFY: snappy in the framing
// format, or raw DEFLATE (no zlib header) at a level the client picks up
// to --max-deflate-level. Either layers over TLS. Both come from
// github.com/klauspost/compress, whose snappy framing is byte-compatible
// with github.com/golang/snappy (what go-nsq and NSQ use) and whose flate
// is compatible with compress/flate.

// upgradeSnappy puts snappy framing over the transport and returns the
// decompressing reader. Every write to the snappy writer is passed on at
// once as whole chunks, so the output buffer's flush is the batch boundary
// and nothing waits inside the compressor. Caller holds wmu.
func (c *conn) upgradeSnappy() io.Reader {
	w := s2.NewWriter(c.compressedSink(), s2.WriterSnappyCompat(), s2.WriterFlushOnWrite(), s2.WriterConcurrency(1))
	c.setOutput(w, nil)
	c.compressed = true
	c.imu.Lock()
	c.snappyOn = true
	c.imu.Unlock()
	return snappy.NewReader(c.rw)
}

// upgradeDeflate puts raw DEFLATE at level over the transport and returns
// the inflating reader. The flate writer keeps data until flushed;
// flushOut flushes it after the output buffer, once per batch. Caller
// holds wmu.
func (c *conn) upgradeDeflate(level int) (io.Reader, error) {
	fw, err := flate.NewWriter(c.compressedSink(), level)
	if err != nil {
		c.cbuf = nil
		return nil, err
	}
	c.setOutput(fw, fw)
	c.deflateLevel = level
	c.compressed = true
	c.imu.Lock()
	c.deflOn = true
	c.imu.Unlock()
	return flate.NewReader(c.rw), nil
}

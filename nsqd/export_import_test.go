package nsqd

import (
	"encoding/binary"
	"fmt"
)

// Writers of NSQ 1.x diskqueue files for the import and check tests, from
// the format documented in NSQ-REFERENCE.md section 14 (never copied from
// NSQ).

// AppendNSQRecord appends one record of an NSQ diskqueue data file:
// [size int32 BE][ts int64 BE][attempts uint16 BE][id: 16 hex digits][body].
func AppendNSQRecord(dst []byte, ts int64, attempts uint16, id string, body []byte) []byte {
	if len(id) != 16 {
		panic("NSQ message IDs are 16 bytes")
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(8+2+16+len(body)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = binary.BigEndian.AppendUint16(dst, attempts)
	dst = append(dst, id...)
	return append(dst, body...)
}

// NSQMeta is the content of an NSQ diskqueue meta file
// (<name>.diskqueue.meta.dat).
func NSQMeta(depth, readNum, readPos, writeNum, writePos int64) string {
	return fmt.Sprintf("%d\n%d,%d\n%d,%d\n", depth, readNum, readPos, writeNum, writePos)
}

// NSQDataFile is the name of data file num of an NSQ diskqueue.
func NSQDataFile(name string, num int) string {
	return fmt.Sprintf("%s.diskqueue.%06d.dat", name, num)
}

// NSQMetaFile is the name of an NSQ diskqueue's meta file.
func NSQMetaFile(name string) string { return name + ".diskqueue.meta.dat" }

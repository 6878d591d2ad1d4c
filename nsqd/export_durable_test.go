package nsqd

// Hooks for the durability tests in corrupt_test.go and crash_test.go.

// CorruptRecords is how many damaged records the topic's log has found
// and skipped (msgLog.corrupt), 0 for an unknown topic.
func (s *Server) CorruptRecords(topic string) uint64 {
	t := s.existingTopic(topic)
	if t == nil {
		return 0
	}
	return t.log.corrupt.Load()
}

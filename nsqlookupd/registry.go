package nsqlookupd

import (
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsqx/nsqx/wire"
)

// peer is one identified nsqd connection. Every registration the peer makes
// points at the same peer, so a PING refreshes all of them at once.
type peer struct {
	id   string   // the connection's remote address, unique while it lives
	info peerInfo // from IDENTIFY; never changes after it

	lastUpdate atomic.Int64 // unix ns of the last IDENTIFY or PING
}

// peerInfo is a producer as /lookup lists it. The field order is the JSON
// order NSQ produces.
type peerInfo struct {
	RemoteAddress    string `json:"remote_address"`
	Hostname         string `json:"hostname"`
	BroadcastAddress string `json:"broadcast_address"`
	TCPPort          int    `json:"tcp_port"`
	HTTPPort         int    `json:"http_port"`
	Version          string `json:"version"`
	TopologyZone     string `json:"topology_zone"`
	TopologyRegion   string `json:"topology_region"`
}

// producer is one peer's entry in one registration. A tombstone belongs to
// the entry, so tombstoning a node for one topic leaves its other topics
// alone.
type producer struct {
	peer         *peer
	tombstoned   bool
	tombstonedAt time.Time
}

// producers maps peer id to that peer's entry in one registration. A
// registration may exist with no producers (created over HTTP, or left
// behind by a disconnect): it still shows in /topics and /channels.
type producers map[string]*producer

// node is one active peer as /nodes lists it.
type node struct {
	peerInfo
	Tombstones []bool   `json:"tombstones"`
	Topics     []string `json:"topics"`
}

// debugEntry is one producer of one registration as /debug lists it. NSQ
// builds these as JSON objects from maps, so the keys are in sorted order.
type debugEntry struct {
	BroadcastAddress string `json:"broadcast_address"`
	Hostname         string `json:"hostname"`
	HTTPPort         int    `json:"http_port"`
	ID               string `json:"id"`
	LastUpdate       int64  `json:"last_update"`
	TCPPort          int    `json:"tcp_port"`
	Tombstoned       bool   `json:"tombstoned"`
	TombstonedAt     int64  `json:"tombstoned_at"`
	TopologyRegion   string `json:"topology_region"`
	TopologyZone     string `json:"topology_zone"`
	Version          string `json:"version"`
}

// registry is the in-memory database of who produces which topic and
// channel. NSQ's three categories are its three maps: every identified peer
// ("client"), topic registrations and channel registrations. All methods
// are safe for concurrent use.
type registry struct {
	inactiveTimeout   time.Duration
	tombstoneLifetime time.Duration
	now               func() time.Time

	mu       sync.RWMutex
	clients  producers
	topics   map[string]producers            // topic → producers
	channels map[string]map[string]producers // topic → channel → producers
}

func newRegistry(inactiveTimeout, tombstoneLifetime time.Duration, now func() time.Time) *registry {
	return &registry{
		inactiveTimeout:   inactiveTimeout,
		tombstoneLifetime: tombstoneLifetime,
		now:               now,
		clients:           producers{},
		topics:            map[string]producers{},
		channels:          map[string]map[string]producers{},
	}
}

// touch records that p is alive (IDENTIFY, PING).
func (r *registry) touch(p *peer) { p.lastUpdate.Store(r.now().UnixNano()) }

// addClient records an identified peer.
func (r *registry) addClient(p *peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	addProducer(r.clients, p)
}

// register adds p as a producer of topic, and of topic's channel when
// channel is not empty. It reports which of the two were new for p.
func (r *registry) register(p *peer, topic, channel string) (channelAdded, topicAdded bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if channel != "" {
		channelAdded = addProducer(r.channelRegistration(topic, channel), p)
	}
	return channelAdded, addProducer(r.topicRegistration(topic), p)
}

// unregisterChannel removes p from one channel. An ephemeral channel left
// without producers is dropped.
func (r *registry) unregisterChannel(p *peer, topic, channel string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.removeChannelProducer(p.id, topic, channel)
}

// unregisterTopic removes p from a topic and from all of that topic's
// channels, returning the channels it was removed from. An ephemeral topic
// left without producers is dropped.
func (r *registry) unregisterTopic(p *peer, topic string) (channels []string, removed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ch := range sortedKeys(r.channels[topic]) {
		if r.removeChannelProducer(p.id, topic, ch) {
			channels = append(channels, ch)
		}
	}
	return channels, r.removeTopicProducer(p.id, topic)
}

// removePeer removes p from every registration, returning their names as
// "category:topic:channel" for the log.
func (r *registry) removePeer(p *peer) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var removed []string
	if _, ok := r.clients[p.id]; ok {
		delete(r.clients, p.id)
		removed = append(removed, "client::")
	}
	for topic, chans := range r.channels {
		for ch, pp := range chans {
			if _, ok := pp[p.id]; ok {
				r.removeChannelProducer(p.id, topic, ch)
				removed = append(removed, "channel:"+topic+":"+ch)
			}
		}
	}
	for topic, pp := range r.topics {
		if _, ok := pp[p.id]; ok {
			r.removeTopicProducer(p.id, topic)
			removed = append(removed, "topic:"+topic+":")
		}
	}
	slices.Sort(removed)
	return removed
}

// addTopic creates a topic registration with no producers (HTTP).
func (r *registry) addTopic(topic string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.topicRegistration(topic)
}

// addChannel creates a channel registration and its topic's (HTTP).
func (r *registry) addChannel(topic, channel string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.channelRegistration(topic, channel)
	r.topicRegistration(topic)
}

// deleteTopic drops a topic and all of its channels, producers included.
func (r *registry) deleteTopic(topic string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.channels, topic)
	delete(r.topics, topic)
}

// deleteChannel drops one channel registration, producers included. It
// reports whether the channel existed.
func (r *registry) deleteChannel(topic, channel string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	chans := r.channels[topic]
	if _, ok := chans[channel]; !ok {
		return false
	}
	delete(chans, channel)
	if len(chans) == 0 {
		delete(r.channels, topic)
	}
	return true
}

// tombstone marks the producers of topic whose HTTP address is node. NSQ
// compares node with "<broadcast_address>:<http_port>"; nsqadmin brackets
// IPv6 addresses, so that form matches too. Tombstoning again restarts the
// lifetime.
func (r *registry) tombstone(topic, node string) (marked int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for _, pr := range r.topics[topic] {
		info := &pr.peer.info
		port := strconv.Itoa(info.HTTPPort)
		if node != info.BroadcastAddress+":"+port && node != net.JoinHostPort(info.BroadcastAddress, port) {
			continue
		}
		pr.tombstoned = true
		pr.tombstonedAt = now
		marked++
	}
	return marked
}

// topicNames lists every topic registration, sorted.
func (r *registry) topicNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return sortedKeys(r.topics)
}

// channelNames lists the channel registrations of topic, sorted.
func (r *registry) channelNames(topic string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return sortedKeys(r.channels[topic])
}

// lookup returns a topic's channels and its active, non-tombstoned
// producers sorted by peer id; ok is false when the topic is not
// registered.
func (r *registry) lookup(topic string) (channels []string, infos []peerInfo, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	pp, ok := r.topics[topic]
	if !ok {
		return nil, nil, false
	}
	now := r.now()
	infos = []peerInfo{}
	for _, id := range sortedKeys(pp) {
		pr := pp[id]
		if r.active(pr.peer, now) && !r.isTombstoned(pr, now) {
			infos = append(infos, pr.peer.info)
		}
	}
	return sortedKeys(r.channels[topic]), infos, true
}

// nodes lists every active peer with the topics it produces and, for each
// topic, whether it is tombstoned there. Tombstoned peers are not hidden.
func (r *registry) nodes() []node {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	nodes := []node{}
	for _, id := range sortedKeys(r.clients) {
		p := r.clients[id].peer
		if !r.active(p, now) {
			continue
		}
		n := node{peerInfo: p.info, Tombstones: []bool{}, Topics: []string{}}
		for _, topic := range sortedKeys(r.topics) {
			if pr, ok := r.topics[topic][id]; ok {
				n.Topics = append(n.Topics, topic)
				n.Tombstones = append(n.Tombstones, r.isTombstoned(pr, now))
			}
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// debug dumps every registration that has producers, keyed
// "category:topic:channel" as NSQ does, each list sorted by peer id.
func (r *registry) debug() map[string][]debugEntry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string][]debugEntry{}
	add := func(key string, pp producers) {
		for _, id := range sortedKeys(pp) {
			out[key] = append(out[key], debugOf(pp[id]))
		}
	}
	add("client::", r.clients)
	for topic, pp := range r.topics {
		add("topic:"+topic+":", pp)
	}
	for topic, chans := range r.channels {
		for ch, pp := range chans {
			add("channel:"+topic+":"+ch, pp)
		}
	}
	return out
}

func debugOf(pr *producer) debugEntry {
	p := pr.peer
	return debugEntry{
		BroadcastAddress: p.info.BroadcastAddress,
		Hostname:         p.info.Hostname,
		HTTPPort:         p.info.HTTPPort,
		ID:               p.id,
		LastUpdate:       p.lastUpdate.Load(),
		TCPPort:          p.info.TCPPort,
		Tombstoned:       pr.tombstoned,
		// NSQ reports the zero time's UnixNano (a large negative number)
		// for a producer never tombstoned; so do we.
		TombstonedAt:   pr.tombstonedAt.UnixNano(),
		TopologyRegion: p.info.TopologyRegion,
		TopologyZone:   p.info.TopologyZone,
		Version:        p.info.Version,
	}
}

// active reports whether p has identified or pinged within the inactive
// producer timeout.
func (r *registry) active(p *peer, now time.Time) bool {
	return now.Sub(time.Unix(0, p.lastUpdate.Load())) <= r.inactiveTimeout
}

// isTombstoned reports whether pr's tombstone is still in force. An expired
// tombstone stays recorded (and shows in /debug) but no longer hides.
func (r *registry) isTombstoned(pr *producer, now time.Time) bool {
	return pr.tombstoned && now.Sub(pr.tombstonedAt) < r.tombstoneLifetime
}

// topicRegistration returns topic's producers, creating the registration.
// r.mu must be held for writing.
func (r *registry) topicRegistration(topic string) producers {
	pp, ok := r.topics[topic]
	if !ok {
		pp = producers{}
		r.topics[topic] = pp
	}
	return pp
}

// channelRegistration returns a channel's producers, creating the
// registration. r.mu must be held for writing.
func (r *registry) channelRegistration(topic, channel string) producers {
	chans, ok := r.channels[topic]
	if !ok {
		chans = map[string]producers{}
		r.channels[topic] = chans
	}
	pp, ok := chans[channel]
	if !ok {
		pp = producers{}
		chans[channel] = pp
	}
	return pp
}

// removeTopicProducer removes peer id from a topic, dropping the topic if it
// is ephemeral and has no producers left (even when id was not there, as
// NSQ does). r.mu must be held for writing.
func (r *registry) removeTopicProducer(id, topic string) (removed bool) {
	pp, ok := r.topics[topic]
	if !ok {
		return false
	}
	if _, removed = pp[id]; removed {
		delete(pp, id)
	}
	if len(pp) == 0 && wire.IsEphemeral(topic) {
		delete(r.topics, topic)
	}
	return removed
}

// removeChannelProducer is removeTopicProducer for a channel; the channel's
// own name decides whether it is ephemeral. r.mu must be held for writing.
func (r *registry) removeChannelProducer(id, topic, channel string) (removed bool) {
	chans := r.channels[topic]
	pp, ok := chans[channel]
	if !ok {
		return false
	}
	if _, removed = pp[id]; removed {
		delete(pp, id)
	}
	if len(pp) == 0 && wire.IsEphemeral(channel) {
		delete(chans, channel)
		if len(chans) == 0 {
			delete(r.channels, topic)
		}
	}
	return removed
}

// addProducer adds p to pp unless it is there already (keeping any
// tombstone), reporting whether it was added.
func addProducer(pp producers, p *peer) bool {
	if _, ok := pp[p.id]; ok {
		return false
	}
	pp[p.id] = &producer{peer: p}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

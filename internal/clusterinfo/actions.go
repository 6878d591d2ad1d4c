package clusterinfo

import (
	"context"
	"errors"
	"net/url"
)

// postAll POSTs path?q to every address (nodes of kind) at once and
// returns the failures as a *PartialError (nil if none).
func (c *Client) postAll(ctx context.Context, kind string, addrs []string, path string, q url.Values) error {
	_, errs := fanOut(addrs, func(addr string) (struct{}, error) {
		return struct{}{}, c.post(ctx, kind, addr, path, q)
	})
	return merge(errs...)
}

// CreateTopicChannel creates topic, and channel if not empty, in every
// lookupd, and the channel on every nsqd already producing the topic (as
// NSQ does). With no lookupds (nsqadmin run with --nsqd-http-address) it
// creates them on every nsqd instead.
func (c *Client) CreateTopicChannel(ctx context.Context, topic, channel string, lookupds, nsqds []string) error {
	tq := url.Values{"topic": {topic}}
	cq := url.Values{"topic": {topic}, "channel": {channel}}
	if len(lookupds) == 0 {
		err := c.postAll(ctx, KindNSQD, nsqds, "/topic/create", tq)
		if channel == "" {
			return err
		}
		return merge(err, c.postAll(ctx, KindNSQD, nsqds, "/channel/create", cq))
	}
	err := c.postAll(ctx, KindLookupd, lookupds, "/topic/create", tq)
	if channel == "" {
		return err
	}
	err2 := c.postAll(ctx, KindLookupd, lookupds, "/channel/create", cq)
	producers, err3 := c.LookupdTopicProducers(ctx, topic, lookupds)
	err4 := c.postAll(ctx, KindNSQD, producers.HTTPAddrs(), "/channel/create", cq)
	return merge(err, err2, err3, err4)
}

// DeleteTopic deletes topic from every lookupd and from every nsqd that has
// it. The producers are found first, since the deletion unregisters them.
func (c *Client) DeleteTopic(ctx context.Context, topic string, lookupds, nsqds []string) error {
	producers, err := c.TopicProducers(ctx, topic, lookupds, nsqds)
	if isTotal(err) {
		return err
	}
	q := url.Values{"topic": {topic}}
	return merge(err, c.postAll(ctx, KindLookupd, lookupds, "/topic/delete", q), c.postAll(ctx, KindNSQD, producers.HTTPAddrs(), "/topic/delete", q))
}

// DeleteChannel deletes the channel from every lookupd and every nsqd that
// has its topic.
func (c *Client) DeleteChannel(ctx context.Context, topic, channel string, lookupds, nsqds []string) error {
	producers, err := c.TopicProducers(ctx, topic, lookupds, nsqds)
	if isTotal(err) {
		return err
	}
	q := url.Values{"topic": {topic}, "channel": {channel}}
	return merge(err, c.postAll(ctx, KindLookupd, lookupds, "/channel/delete", q), c.postAll(ctx, KindNSQD, producers.HTTPAddrs(), "/channel/delete", q))
}

// TopicAction applies action ("pause", "unpause" or "empty") to topic on
// every nsqd that has it.
func (c *Client) TopicAction(ctx context.Context, action, topic string, lookupds, nsqds []string) error {
	return c.onProducers(ctx, topic, "/topic/"+action, url.Values{"topic": {topic}}, lookupds, nsqds)
}

// ChannelAction applies action ("pause", "unpause" or "empty") to the
// channel on every nsqd that has its topic.
func (c *Client) ChannelAction(ctx context.Context, action, topic, channel string, lookupds, nsqds []string) error {
	return c.onProducers(ctx, topic, "/channel/"+action, url.Values{"topic": {topic}, "channel": {channel}}, lookupds, nsqds)
}

func (c *Client) onProducers(ctx context.Context, topic, path string, q url.Values, lookupds, nsqds []string) error {
	producers, err := c.TopicProducers(ctx, topic, lookupds, nsqds)
	if isTotal(err) {
		return err
	}
	return merge(err, c.postAll(ctx, KindNSQD, producers.HTTPAddrs(), path, q))
}

// TombstoneNodeForTopic tombstones node (broadcast address:HTTP port) for
// topic in every lookupd, so consumers stop finding it there, and deletes
// the topic on that nsqd. The node being unreachable (the usual reason to
// tombstone) is reported as a partial failure.
func (c *Client) TombstoneNodeForTopic(ctx context.Context, topic, node string, lookupds []string) error {
	err := c.postAll(ctx, KindLookupd, lookupds, "/topic/tombstone", url.Values{"topic": {topic}, "node": {node}})
	return merge(err, c.postAll(ctx, KindNSQD, []string{node}, "/topic/delete", url.Values{"topic": {topic}}))
}

// isTotal reports whether err is a failure of every node asked, after
// which there is nothing to act on.
func isTotal(err error) bool {
	var pe *PartialError
	return err != nil && !errors.As(err, &pe)
}

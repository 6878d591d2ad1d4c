// TOUCH and REQ with nsqjs's Message: a Reader with a 1 s message timeout
// holds the one message on the requeue topic for 2 s, touching it every
// 250 ms (so nsqd must not time it out), then requeues it with
// message.requeue(0); it arrives again with attempts 2, same id and body,
// and is finished. The script waits for nsqd's /stats to show the channel
// empty with nothing in flight, so the FIN has arrived before it exits; the
// Go test then checks the channel's requeue and timeout counts.
// Usage: node requeue.js host:port http-host:port
const nsq = require('nsqjs')
const [addr, httpAddr] = process.argv.slice(2)
const [host, port] = addr.split(':')
const topic = 'requeue'
const body = 'touch me, requeue me'
setTimeout(() => { console.error('FAIL: still running after 30s'); process.exit(1) }, 30000)

function fail(e) { console.error('FAIL', e); process.exit(1) }

async function channelStats() {
  const res = await fetch(`http://${httpAddr}/stats?format=json&topic=${topic}&channel=c`)
  const s = await res.json()
  return s.topics[0].channels[0]
}

async function waitDrained() {
  for (;;) {
    const c = await channelStats()
    if (c.depth === 0 && c.in_flight_count === 0 && c.deferred_count === 0) return c
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const w = new nsq.Writer(host, +port)
w.on('error', fail)
w.connect()
w.on('ready', () => {
  w.publish(topic, body, (err) => {
    if (err) fail(err)
    // maxBackoffDuration keeps the Reader's backoff after REQ short.
    const r = new nsq.Reader(topic, 'c', {nsqdTCPAddresses: [addr], messageTimeout: 1000, maxBackoffDuration: 1})
    let firstID
    r.on('error', fail)
    r.on('message', (m) => {
      if (m.body.toString() !== body) fail('got body ' + m.body)
      if (m.attempts === 1) {
        if (m.msgTimeout !== 1000) fail('nsqd granted msg_timeout ' + m.msgTimeout + ', want 1000')
        firstID = m.id
        const start = Date.now()
        const tick = setInterval(() => {
          if (Date.now() - start < 2000) return m.touch()
          clearInterval(tick)
          console.log('attempt 1: touched', m.touchCount, 'times over', Date.now() - start, 'ms with a 1000 ms timeout, then requeue(0)')
          m.requeue(0)
        }, 250)
        return
      }
      if (m.attempts !== 2 || m.id !== firstID) fail(`got attempts ${m.attempts} id ${m.id}, want 2 and ${firstID}`)
      m.finish()
      console.log('attempt 2: same id, attempts', m.attempts + ', finished')
      waitDrained().then((c) => {
        console.log('nsqd channel: depth', c.depth, 'in flight', c.in_flight_count, 'requeued', c.requeue_count, 'timed out', c.timeout_count)
        r.close()
        w.close()
        process.exit(0)
      }, fail)
    })
    r.connect()
  })
})

// AUTH with nsqjs's authSecret against an nsqd that asks the test's auth
// server. Allowed: the good secret publishes and consumes on auth_ok over a
// plain connection and on auth_tls over TLS with a client certificate, and
// nsqd's AUTH answer names the identity. Denied: a wrong secret makes the
// Writer's publish and the Reader fail with E_AUTH_FAILED, and the good
// secret publishing to a topic it has no permission for fails with
// E_UNAUTHORIZED. The Go test checks that nothing else was published.
// Usage: node auth.js host:port ca.pem client.pem client-key.pem good-secret bad-secret identity
const fs = require('fs')
const nsq = require('nsqjs')
const [addr, caFile, certFile, keyFile, good, bad, identity] = process.argv.slice(2)
const [host, port] = addr.split(':')
const tlsOpts = {tls: true, ca: fs.readFileSync(caFile), cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile)}
setTimeout(() => { console.error('FAIL: still running after 30s'); process.exit(1) }, 30000)

function writer(opts) {
  return new Promise((resolve, reject) => {
    const w = new nsq.Writer(host, +port, opts)
    w.on('ready', () => resolve(w))
    w.on('error', reject)
    w.connect()
  })
}

function publish(w, topic, msgs) {
  return new Promise((resolve, reject) => w.publish(topic, msgs, (err) => err ? reject(err) : resolve()))
}

function consume(topic, n, opts) {
  return new Promise((resolve, reject) => {
    const r = new nsq.Reader(topic, 'c', Object.assign({nsqdTCPAddresses: [addr], maxInFlight: 10}, opts))
    const seen = new Set()
    r.on('error', reject)
    r.on('message', (m) => {
      seen.add(m.body.toString())
      m.finish()
      if (seen.size === n) { r.close(); resolve([...seen].sort()) }
    })
    r.connect()
  })
}

// allowed publishes bodies to topic and reads them back, all with opts.
async function allowed(topic, bodies, opts) {
  const w = await writer(opts)
  const auth = w.conn.auth
  if (!auth || auth.identity !== identity) throw new Error('AUTH answered ' + JSON.stringify(auth) + ', want identity ' + identity)
  await publish(w, topic, bodies)
  const got = await consume(topic, bodies.length, opts)
  if (JSON.stringify(got) !== JSON.stringify([...bodies].sort())) throw new Error(topic + ': got ' + got)
  const sock = opts.tls ? 'tls ' + w.conn.conn.getProtocol() : 'plain'
  w.close()
  console.log('allowed over', sock + ':', 'AUTH', JSON.stringify(auth) + ',', 'published and received', got.length, 'on', topic)
}

// refused checks that err carries the error code.
function refused(what, err, code) {
  if (!err || !String(err).includes(code)) throw new Error(what + ': got ' + err + ', want ' + code)
  console.log('denied:', what, 'failed with', String(err))
}

async function deniedWriter() {
  const w = new nsq.Writer(host, +port, {authSecret: bad})
  const errs = []
  w.on('error', (e) => errs.push(e))
  w.connect()
  const err = await new Promise((resolve) => w.publish('auth_ok', 'must not arrive', resolve))
  refused('Writer publish with a wrong secret', err, 'E_AUTH_FAILED')
  refused('Writer error event with a wrong secret', errs[0], 'E_AUTH_FAILED')
}

async function deniedReader() {
  const r = new nsq.Reader('auth_ok', 'denied', {nsqdTCPAddresses: [addr], authSecret: bad})
  const err = await new Promise((resolve) => {
    r.on('error', resolve)
    r.on('message', (m) => resolve(new Error('got a message: ' + m.body)))
    r.connect()
  })
  r.close()
  refused('Reader with a wrong secret', err, 'E_AUTH_FAILED')
}

async function forbiddenTopic() {
  const w = await writer({authSecret: good})
  const err = await new Promise((resolve) => w.publish('auth_forbidden', 'must not arrive', resolve))
  refused('publish to a topic without permission', err, 'E_UNAUTHORIZED')
}

(async () => {
  await allowed('auth_ok', ['a', 'b', 'c'], {authSecret: good})
  await allowed('auth_tls', ['t'], Object.assign({authSecret: good}, tlsOpts))
  await deniedWriter()
  await deniedReader()
  await forbiddenTopic()
  process.exit(0)
})().catch((e) => { console.error('FAIL', e); process.exit(1) })

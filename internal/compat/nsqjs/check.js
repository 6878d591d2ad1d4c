// Publishes with nsqjs's Writer (PUB, MPUB, DPUB) and consumes with its
// Reader, checking every message arrives: plain, snappy and deflate; or,
// given the test's CA file, TLS verified against that CA, TLS without
// verification, TLS + snappy and TLS + deflate, checking that the Writer's
// and the Reader's sockets are encrypted.
// Usage: node check.js host:port [ca.pem]
const fs = require('fs')
const nsq = require('nsqjs')
const [host, port] = process.argv[2].split(':')
const caFile = process.argv[3]
const N = 300
setTimeout(() => { console.error('FAIL: still running after 40s'); process.exit(1) }, 40000)

let variants = [{}, {snappy: true}, {deflate: true}]
if (caFile) {
  const ca = fs.readFileSync(caFile)
  variants = [
    {tls: true, ca},
    {tls: true, tlsVerification: false},
    {tls: true, ca, snappy: true},
    {tls: true, ca, deflate: true},
  ]
}

// describe names a variant without the CA's bytes.
function describe(opts) {
  const o = Object.assign({}, opts)
  if (o.ca) o.ca = 'test CA'
  return JSON.stringify(o)
}

// encrypted checks a socket is TLS when the variant asks for it and
// returns the protocol version it negotiated.
function encrypted(sock, opts, who) {
  if (!opts.tls) return 'plain'
  if (!sock || !sock.encrypted) throw new Error(who + ' socket is not encrypted')
  return sock.getProtocol()
}

function run(opts, i) {
  const t = 'nsqjs_' + i
  return new Promise((resolve, reject) => {
    const w = new nsq.Writer(host, +port, opts)
    w.connect()
    w.on('error', reject)
    w.on('ready', () => {
      let proto
      try { proto = encrypted(w.conn.conn, opts, 'writer') } catch (e) { return reject(e) }
      const bodies = []
      for (let i = 0; i < N; i++) bodies.push('m' + i)
      w.publish(t, bodies.slice(0, 100), (err) => {
        if (err) return reject(err)
        let left = 200
        for (const b of bodies.slice(100)) {
          w.publish(t, b, (err) => { if (err) reject(err); if (--left === 0) consume() })
        }
      })
      function consume() {
        w.deferPublish(t, ['deferred'], 500, (err) => {
          if (err) return reject(err)
          const seen = new Set()
          const r = new nsq.Reader(t, 'c', Object.assign({nsqdTCPAddresses: [host + ':' + port], maxInFlight: 50}, opts))
          r.connect()
          r.on('error', reject)
          r.on('message', (m) => {
            if (seen.size === 0) {
              try {
                for (const c of r.readerRdy.connections) encrypted(c.conn.conn, opts, 'reader')
              } catch (e) { return reject(e) }
            }
            seen.add(m.body.toString())
            m.finish()
            if (seen.size === N + 1) { r.close(); w.close(); resolve({received: seen.size, proto}) }
          })
        })
      }
    })
  })
}

(async () => {
  for (const [i, opts] of variants.entries()) {
    const {received, proto} = await run(opts, i)
    console.log(describe(opts), 'received', received, 'over', proto)
  }
  process.exit(0)
})().catch((e) => { console.error('FAIL', e); process.exit(1) })

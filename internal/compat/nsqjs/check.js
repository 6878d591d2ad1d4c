// Publishes with nsqjs's Writer (PUB, MPUB, DPUB) and consumes with its
// Reader (plain, then snappy, then deflate), checking every message arrives.
const nsq = require('nsqjs')
const [host, port] = process.argv[2].split(':')
const topic = 'nsqjs_' + Date.now()
const N = 300
function run(opts) {
  return new Promise((resolve, reject) => {
    const w = new nsq.Writer(host, +port, opts)
    w.connect()
    w.on('error', reject)
    w.on('ready', () => {
      const bodies = []
      for (let i = 0; i < N; i++) bodies.push('m' + i)
      const t = topic + '_' + (opts.snappy ? 's' : opts.deflate ? 'd' : 'p')
      w.publish(t, bodies.slice(0, 100), (err) => {
        if (err) return reject(err)
        let left = 200
        for (const b of bodies.slice(100)) {
          w.publish(t, b, (err) => { if (err) reject(err); if (--left === 0) consume(t) })
        }
      })
      function consume(t) {
        w.deferPublish(t, ['deferred'], 500, (err) => {
          if (err) return reject(err)
          const seen = new Set()
          const r = new nsq.Reader(t, 'c', Object.assign({nsqdTCPAddresses: [host + ':' + port], maxInFlight: 50}, opts))
          r.connect()
          r.on('error', reject)
          r.on('message', (m) => {
            seen.add(m.body.toString())
            m.finish()
            if (seen.size === N + 1) { r.close(); w.close(); resolve(seen.size) }
          })
          setTimeout(() => reject(new Error('timeout with ' + seen.size)), 10000)
        })
      }
    })
  })
}
(async () => {
  for (const opts of [{}, {snappy: true}, {deflate: true}]) {
    const n = await run(opts)
    console.log(JSON.stringify(opts), 'received', n)
  }
  process.exit(0)
})().catch((e) => { console.error('FAIL', e); process.exit(1) })

const nsq = require('nsqjs')
const [nsqd, lookupd] = process.argv.slice(2)
const [h, p] = nsqd.split(':')
const topic = 'jslookup_' + Date.now()
const w = new nsq.Writer(h, +p)
w.connect()
w.on('ready', () => {
  w.publish(topic, ['a', 'b', 'c'], (err) => {
    if (err) { console.error('pub', err); process.exit(1) }
    const r = new nsq.Reader(topic, 'c', { lookupdHTTPAddresses: [lookupd], lookupdPollInterval: 1 })
    const seen = new Set()
    r.on('message', (m) => { seen.add(m.body.toString()); m.finish(); if (seen.size === 3) { console.log('via lookupd received', seen.size); process.exit(0) } })
    r.on('error', (e) => { console.error('reader', e); process.exit(1) })
    r.connect()
    setTimeout(() => { console.error('timeout', seen.size); process.exit(1) }, 15000)
  })
})

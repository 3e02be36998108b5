#!/usr/bin/env node
// Benchmark clients: the stock Yjs client (Y.Doc + y-websocket's WebsocketProvider) against
// any y-websocket server, or Hocuspocus' own client (Y.Doc + `@hocuspocus/provider`) against
// a Hocuspocus server (endpoint protocol "hocuspocus"), all in this one process so every time
// comes from one clock.
//
// Usage: node driver.mjs <spec.json>; prints one JSON result on stdout.
//
// spec.mode "fanout": one writer sets key i of a Y.Map every intervalMs; each reader notes when
//   key i arrives. Result: {sent: [ms], arrivals: [[ms or null] per reader]}.
// spec.mode "trace": the writer applies pre-encoded Yjs updates (a binary file of 4-byte
//   big-endian lengths + updates) as fast as it can; watchers wait until their text equals
//   spec.expectedLength characters and then compare the text. Result: {sendMs, doneMs: [ms per
//   watcher], ok: [bool], progress: [[ms, characters at the slowest watcher]]}.
// Both also give closes: [disconnects after the first sync, per reader, then the writer's].
// spec.mode "encode": no server. Chains copies of the trace spec.traceFile (each typed after the
//   previous copy's end) up to spec.count transactions, applies them to a Y.Text, and writes one
//   Yjs update per transaction to spec.updatesFile and the final text to spec.textFile. Trace
//   positions count code points, Yjs counts UTF-16 units: traces with characters outside the
//   Basic Multilingual Plane are refused. Result: {updates, length}.
// Every wait is bounded by spec.timeoutMs; a reader that never connects fails the run.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { HocuspocusProvider } from '@hocuspocus/provider'
import WebSocket from 'ws'
import { readFileSync, writeFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { performance } from 'node:perf_hooks'

console.log = console.error
process.setMaxListeners(0)

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// A client: {doc, closes, synced(), destroy()}. closes counts disconnects after a sync
// (slow consumer, server busy...).
const yWebsocketClient = (url, doc) => {
  const provider = new WebsocketProvider(url.base, url.room, doc, {
    params: url.token ? { token: url.token } : {},
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    // Awareness adds a message per client per 15 s; the benchmark measures updates.
    resyncInterval: -1
  })
  provider.awareness.setLocalState(null)
  const c = {
    doc,
    closes: 0,
    synced: () => new Promise((resolve) => {
      if (provider.synced) return resolve()
      provider.once('sync', (isSynced) => isSynced && resolve())
    }),
    destroy: () => provider.destroy()
  }
  provider.on('connection-close', () => { if (provider.synced) c.closes++ })
  return c
}

const hocuspocusClient = (url, doc) => {
  const provider = new HocuspocusProvider({
    url: url.base,
    name: url.room,
    document: doc,
    token: url.token ?? null,
    WebSocketPolyfill: WebSocket,
    // No awareness at all: the benchmark measures updates.
    awareness: null
  })
  // The provider clears `synced` before it reports a close, so remember it here.
  let live = false
  const c = {
    doc,
    closes: 0,
    synced: () => new Promise((resolve) => {
      if (provider.synced) return resolve()
      const onSynced = ({ state }) => {
        if (!state) return
        provider.off('synced', onSynced)
        resolve()
      }
      provider.on('synced', onSynced)
    }),
    destroy: () => provider.destroy()
  }
  provider.on('synced', ({ state }) => { if (state) live = true })
  provider.on('close', () => {
    if (live) c.closes++
    live = false
  })
  return c
}

const CLIENTS = { 'y-websocket': yWebsocketClient, hocuspocus: hocuspocusClient }

const client = (url, clientId) => {
  const make = CLIENTS[url.protocol ?? 'y-websocket']
  if (!make) throw new Error(`unknown protocol ${url.protocol}`)
  const doc = new Y.Doc()
  doc.clientID = clientId
  return make(url, doc)
}

const synced = (c) => c.synced()

const withTimeout = (promise, ms, what) => Promise.race([
  promise,
  sleep(ms).then(() => { throw new Error(`timed out: ${what}`) })
])

const fanout = async () => {
  const readers = spec.readers.map((url, i) => client(url, 1000 + i))
  const arrivals = readers.map(() => new Array(spec.count).fill(null))
  readers.forEach((reader, r) => {
    reader.doc.getMap('m').observe((event) => {
      const now = performance.now()
      for (const key of event.keysChanged) {
        const index = Number(key.slice(1))
        if (arrivals[r][index] === null) arrivals[r][index] = now
      }
    })
  })
  const writer = client(spec.writer, 1)
  await withTimeout(Promise.all([...readers, writer].map(synced)), spec.timeoutMs, 'sync')
  await sleep(300)
  const map = writer.doc.getMap('m')
  const sent = []
  const start = performance.now()
  for (let i = 0; i < spec.count; i++) {
    // A schedule, not a fixed pause, so the rate does not drift.
    const wait = start + i * spec.intervalMs - performance.now()
    if (wait > 0) await sleep(wait)
    sent.push(performance.now())
    map.set(`k${i}`, i)
  }
  const deadline = performance.now() + spec.timeoutMs
  while (performance.now() < deadline && arrivals.some((a) => a.includes(null))) await sleep(20)
  const closes = [...readers.map((r) => r.closes), writer.closes]
  for (const c of [writer, ...readers]) c.destroy()
  return { sent, arrivals, closes }
}

const readUpdates = (path) => {
  const bytes = readFileSync(path)
  const updates = []
  for (let at = 0; at < bytes.length;) {
    const length = bytes.readUInt32BE(at)
    updates.push(new Uint8Array(bytes.buffer, bytes.byteOffset + at + 4, length))
    at += 4 + length
  }
  return updates
}

const trace = async () => {
  const updates = readUpdates(spec.updatesFile)
  const expected = readFileSync(spec.expectedFile, 'utf8')
  const watchers = spec.readers.map((url, i) => client(url, 1000 + i))
  const writer = client(spec.writer, 1)
  await withTimeout(Promise.all([...watchers, writer].map(synced)), spec.timeoutMs, 'sync')
  await sleep(300)
  const texts = watchers.map((w) => w.doc.getText('content'))
  const doneMs = watchers.map(() => null)
  // Characters, not updates: a server may send many updates as one.
  const slowest = () => Math.min(...texts.map((text) => text.length))
  const start = performance.now()
  const progress = []
  const sampler = setInterval(() => progress.push([performance.now() - start, slowest()]), 100)
  // As fast as the client can: yield to the event loop now and then so the socket drains.
  for (let i = 0; i < updates.length; i++) {
    Y.applyUpdate(writer.doc, updates[i])
    if (i % 500 === 499) await new Promise((resolve) => setImmediate(resolve))
  }
  const sendMs = performance.now() - start
  const deadline = start + spec.timeoutMs
  while (performance.now() < deadline && doneMs.includes(null)) {
    texts.forEach((text, i) => {
      if (doneMs[i] === null && text.length === expected.length) doneMs[i] = performance.now() - start
    })
    await sleep(5)
  }
  clearInterval(sampler)
  progress.push([performance.now() - start, slowest()])
  const ok = texts.map((text) => text.toString() === expected)
  const closes = [...watchers.map((w) => w.closes), writer.closes]
  for (const c of [writer, ...watchers]) c.destroy()
  return { sendMs, doneMs, ok, progress, closes }
}

const encode = () => {
  const source = JSON.parse(gunzipSync(readFileSync(spec.traceFile)).toString('utf8'))
  if (/[\u{10000}-\u{10FFFF}]/u.test(JSON.stringify(source))) {
    throw new Error('the trace has characters outside the BMP: positions would need converting')
  }
  const doc = new Y.Doc()
  // Not the id of any client of the runs (writer 1, readers from 1000): two docs sharing
  // a client id would corrupt each other's view of that client's items.
  doc.clientID = 7
  const text = doc.getText('content')
  const chunks = []
  doc.on('update', (update) => {
    const header = Buffer.alloc(4)
    header.writeUInt32BE(update.length)
    chunks.push(header, Buffer.from(update))
  })
  let done = 0
  let offset = 0
  while (done < spec.count) {
    const txns = source.startContent ? [{ patches: [[0, 0, source.startContent]] }, ...source.txns] : source.txns
    for (const txn of txns) {
      if (done === spec.count) break
      doc.transact(() => {
        for (const [position, deleted, inserted] of txn.patches) {
          if (deleted) text.delete(position + offset, deleted)
          if (inserted) text.insert(position + offset, inserted)
        }
      })
      done++
    }
    offset += source.endContent.length
  }
  writeFileSync(spec.updatesFile, Buffer.concat(chunks))
  writeFileSync(spec.textFile, text.toString())
  return { updates: done, length: text.length }
}

const MODES = { fanout, trace, encode }

const main = async () => {
  const result = await MODES[spec.mode]()
  // Exit only once the (large) result is flushed: a pipe takes 64 KiB at a time.
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0))
}

main().catch((error) => {
  const message = JSON.stringify({ error: String(error && error.stack ? error.stack : error) })
  process.stdout.write(message + '\n', () => process.exit(1))
})

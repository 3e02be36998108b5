#!/usr/bin/env node
// Scripted Yjs editors for the Python tests and benchmarks.
//
// One node process hosts any number of real Yjs clients (Y.Doc + the stock y-websocket
// WebsocketProvider), because starting node costs ~60 ms per process and a test may want ten
// clients. The process reads one JSON command per line on stdin and writes one JSON reply per
// line on stdout. Commands run concurrently (a `wait_text` on one client must not block an
// `insert` on another), so replies can come back out of order: every reply echoes the request's
// `seq` and `id`. Failures are replies (`{"ok": false, "error": ...}`), never a crash.
//
// Positions and lengths are in Yjs units (UTF-16 code units), as a browser editor counts them.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import readline from 'node:readline'

// stdout carries the protocol; anything a library prints must go to stderr instead.
console.log = console.error
console.info = console.error
// Every provider registers a process 'exit' listener; ten clients would trip Node's leak warning.
process.setMaxListeners(0)

const DEFAULT_TIMEOUT_MS = 10000
const MAX_CLOSES_KEPT = 50

/** Thrown by command handlers; becomes an `{"ok": false}` reply. */
class CommandError extends Error {}

/** @type {Map<string, Client>} */
const clients = new Map()

/**
 * One scripted editor: a document, its provider and what happened to its connection.
 */
class Client {
  constructor (id, { url, doc, token, params, clientId, headers }) {
    this.id = id
    // HTTP headers of the upgrade (Cookie, Origin), as a browser would send them; the
    // `set_headers` command changes them for the next reconnect.
    this.headers = headers || {}
    this.ydoc = new Y.Doc()
    if (clientId != null) {
      this.ydoc.clientID = clientId
    }
    this.ytext = this.ydoc.getText('content')
    this.attempts = 0
    /** @type {Array<{code: number, reason: string}>} */
    this.closes = []
    this.lastError = null
    this.terminalClose = null
    const allParams = { ...(params || {}) }
    if (token != null) {
      allParams.token = token
    }
    this.provider = new WebsocketProvider(url, doc, this.ydoc, {
      connect: false,
      params: allParams,
      WebSocketPolyfill: countingWebSocket(this),
      // Clients in one process would otherwise sync with each other over a BroadcastChannel
      // and never need the server, which is exactly what the tests must exercise.
      disableBc: true
    })
    this.provider.on('connection-close', (event) => this.recordClose(event))
    this.provider.on('connection-error', (event) => {
      this.lastError = event && event.message ? String(event.message) : 'connection error'
    })
    this.provider.on('closed', (event) => {
      this.terminalClose = { code: event.code, reason: event.reason }
    })
  }

  recordClose (event) {
    // `null` means we closed it ourselves (disconnect, or the provider's idle watchdog).
    const close = event == null
      ? { code: null, reason: 'closed locally' }
      : { code: event.code, reason: String(event.reason || '') }
    this.closes.push(close)
    if (this.closes.length > MAX_CLOSES_KEPT) {
      this.closes.shift()
    }
  }

  status () {
    const last = this.closes.length > 0 ? this.closes[this.closes.length - 1] : null
    return {
      client_id: this.ydoc.clientID,
      connected: this.provider.wsconnected,
      connecting: this.provider.wsconnecting,
      synced: this.provider.synced,
      should_connect: this.provider.shouldConnect,
      attempts: this.attempts,
      close_count: this.closes.length,
      last_close_code: last ? last.code : null,
      last_close_reason: last ? last.reason : null,
      terminal_close: this.terminalClose,
      last_error: this.lastError,
      http_status: httpStatusOf(this.lastError)
    }
  }

  destroy () {
    this.provider.destroy()
    this.ydoc.destroy()
  }
}

/** A `ws` WebSocket class that counts connection attempts, to prove there is no retry loop. */
const countingWebSocket = (client) => class CountingWebSocket extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols, { headers: { ...client.headers } })
    client.attempts++
  }
}

/** `ws` reports a refused upgrade as "Unexpected server response: 401". */
const httpStatusOf = (message) => {
  const match = /Unexpected server response: (\d+)/.exec(message || '')
  return match ? Number(match[1]) : null
}

const getClient = (id) => {
  const client = clients.get(id)
  if (client === undefined) {
    throw new CommandError(`no client ${JSON.stringify(id)}`)
  }
  return client
}

/**
 * Resolves with `check()`'s first truthy value, re-checking whenever `subscribe` fires, or with
 * `null` after `timeoutMs`.
 */
const waitUntil = (check, subscribe, timeoutMs) => new Promise((resolve) => {
  const first = check()
  if (first) {
    resolve(first)
    return
  }
  let unsubscribe = () => {}
  const timer = setTimeout(() => {
    unsubscribe()
    resolve(null)
  }, timeoutMs)
  unsubscribe = subscribe(() => {
    const value = check()
    if (value) {
      clearTimeout(timer)
      unsubscribe()
      resolve(value)
    }
  })
})

const onProvider = (provider, name) => (callback) => {
  provider.on(name, callback)
  return () => provider.off(name, callback)
}

const onDoc = (ydoc, name) => (callback) => {
  ydoc.on(name, callback)
  return () => ydoc.off(name, callback)
}

const onAwareness = (awareness) => (callback) => {
  awareness.on('change', callback)
  return () => awareness.off('change', callback)
}

/**
 * Starts the provider and waits for the first sync, or for the server to close the socket
 * before that. Unless `keepTrying`, a failed attempt stops the provider, so a rejected client
 * never sits in a background reconnect loop (the stock provider retries every non-4xxx code).
 */
const syncOrClose = async (client, timeoutMs, keepTrying) => {
  const closesBefore = client.closes.length
  client.provider.connect()
  const outcome = await waitUntil(
    () => {
      if (client.provider.synced) return 'synced'
      const closedByServer = client.closes.slice(closesBefore).some((c) => c.code !== null)
      if (closedByServer && (!keepTrying || client.terminalClose)) return 'closed'
      return null
    },
    (callback) => {
      // 'closed' (a permanent close) fires after 'connection-close', so listen to both.
      const offs = ['sync', 'connection-close', 'closed'].map((name) =>
        onProvider(client.provider, name)(callback))
      return () => offs.forEach((off) => off())
    },
    timeoutMs
  )
  if (outcome !== 'synced') {
    client.provider.disconnect()
  }
  const status = client.status()
  return {
    ok: outcome === 'synced',
    synced: outcome === 'synced',
    ...(outcome === null ? { error: 'timeout waiting for sync' } : {}),
    ...(outcome === 'closed' ? { error: 'closed by server' } : {}),
    client_id: status.client_id,
    close_code: outcome === 'synced' ? null : status.last_close_code,
    close_reason: outcome === 'synced' ? null : status.last_close_reason,
    http_status: status.http_status,
    attempts: status.attempts
  }
}

const connect = async (msg) => {
  if (clients.has(msg.id)) {
    throw new CommandError(`client ${JSON.stringify(msg.id)} exists; use reconnect or close`)
  }
  requireFields(msg, ['url', 'doc'])
  const client = new Client(msg.id, {
    url: msg.url,
    doc: msg.doc,
    token: msg.token,
    params: msg.params,
    clientId: msg.client_id,
    headers: msg.headers
  })
  clients.set(msg.id, client)
  return syncOrClose(client, timeoutOf(msg), Boolean(msg.keep_trying))
}

const reconnect = async (msg) => {
  const client = getClient(msg.id)
  if (client.provider.wsconnected || client.provider.wsconnecting) {
    throw new CommandError('already connected or connecting')
  }
  client.terminalClose = null
  return syncOrClose(client, timeoutOf(msg), Boolean(msg.keep_trying))
}

const setHeaders = async (msg) => {
  if (msg.headers == null || typeof msg.headers !== 'object') {
    throw new CommandError('missing object field headers')
  }
  getClient(msg.id).headers = { ...msg.headers }
  return { ok: true }
}

const disconnect = async (msg) => {
  const client = getClient(msg.id)
  client.provider.disconnect()
  return { ok: true }
}

const insert = async (msg) => {
  const client = getClient(msg.id)
  checkRange(client.ytext, msg.pos, 0)
  if (typeof msg.text !== 'string') throw new CommandError('text must be a string')
  client.ytext.insert(msg.pos, msg.text)
  return { ok: true, length: client.ytext.length }
}

const remove = async (msg) => {
  const client = getClient(msg.id)
  checkRange(client.ytext, msg.pos, msg.len)
  client.ytext.delete(msg.pos, msg.len)
  return { ok: true, length: client.ytext.length }
}

const checkRange = (ytext, pos, len) => {
  if (!Number.isInteger(pos) || !Number.isInteger(len) || pos < 0 || len < 0 ||
      pos + len > ytext.length) {
    throw new CommandError(`range pos=${pos} len=${len} outside text of length ${ytext.length}`)
  }
}

const text = async (msg) => ({ ok: true, text: getClient(msg.id).ytext.toString() })

const waitText = async (msg) => {
  const client = getClient(msg.id)
  const matched = await waitUntil(
    () => client.ytext.toString() === msg.text,
    onDoc(client.ydoc, 'update'),
    timeoutOf(msg)
  )
  const current = client.ytext.toString()
  return matched
    ? { ok: true, text: current }
    : { ok: false, timeout: true, error: 'timeout waiting for text', text: current }
}

const waitSynced = async (msg) => {
  const client = getClient(msg.id)
  const synced = await waitUntil(
    () => client.provider.synced,
    onProvider(client.provider, 'sync'),
    timeoutOf(msg)
  )
  return synced ? { ok: true } : { ok: false, timeout: true, error: 'timeout waiting for sync' }
}

const awarenessSet = async (msg) => {
  const awareness = getClient(msg.id).provider.awareness
  if (typeof msg.field === 'string') {
    awareness.setLocalStateField(msg.field, msg.value)
  } else {
    awareness.setLocalState(msg.state === undefined ? null : msg.state)
  }
  return { ok: true }
}

const statesOf = (awareness) => Object.fromEntries(awareness.getStates())

const awarenessStates = async (msg) => {
  const client = getClient(msg.id)
  return { ok: true, client_id: client.ydoc.clientID, states: statesOf(client.provider.awareness) }
}

/**
 * Waits until this client sees `client_id`'s awareness state (equal to `state`, if given),
 * or, with `present: false`, until that state is gone.
 */
const waitAwareness = async (msg) => {
  const awareness = getClient(msg.id).provider.awareness
  const wantPresent = msg.present !== false
  const expected = msg.state === undefined ? undefined : JSON.stringify(msg.state)
  const matches = () => {
    const state = awareness.getStates().get(msg.client_id)
    if (!wantPresent) return state === undefined
    return state !== undefined && (expected === undefined || JSON.stringify(state) === expected)
  }
  const matched = await waitUntil(matches, onAwareness(awareness), timeoutOf(msg))
  const states = statesOf(awareness)
  return matched
    ? { ok: true, states }
    : { ok: false, timeout: true, error: 'timeout waiting for awareness', states }
}

const stateVector = async (msg) => {
  const client = getClient(msg.id)
  return { ok: true, data: toBase64(Y.encodeStateVector(client.ydoc)) }
}

const encodeState = async (msg) => {
  const client = getClient(msg.id)
  const vector = msg.state_vector ? fromBase64(msg.state_vector) : undefined
  return { ok: true, data: toBase64(Y.encodeStateAsUpdate(client.ydoc, vector)) }
}

const applyUpdate = async (msg) => {
  const client = getClient(msg.id)
  Y.applyUpdate(client.ydoc, fromBase64(msg.update), 'harness')
  return { ok: true, text: client.ytext.toString() }
}

/** mulberry32: a tiny seeded PRNG, so a burst replays identically for the same seed. */
const seededRandom = (seed) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz '

const randomEdit = (ytext, random, deleteRatio) => {
  const length = ytext.length
  if (length > 0 && random() < deleteRatio) {
    const pos = Math.floor(random() * length)
    const len = Math.min(length - pos, 1 + Math.floor(random() * 3))
    ytext.delete(pos, len)
    return 'delete'
  }
  const pos = Math.floor(random() * (length + 1))
  let chunk = ''
  const size = 1 + Math.floor(random() * 4)
  for (let i = 0; i < size; i++) {
    chunk += ALPHABET[Math.floor(random() * ALPHABET.length)]
  }
  ytext.insert(pos, chunk)
  return 'insert'
}

const pause = (ms) => new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)))

/**
 * A typing burst: `count` single-transaction edits at seeded random positions. Between edits
 * the event loop runs, so remote updates interleave with local ones as with a real typist.
 */
const randomEdits = async (msg) => {
  const client = getClient(msg.id)
  if (!Number.isInteger(msg.count) || msg.count < 0) throw new CommandError('count must be >= 0')
  const random = seededRandom(Number.isInteger(msg.seed) ? msg.seed : 1)
  const deleteRatio = typeof msg.delete_ratio === 'number' ? msg.delete_ratio : 0.3
  const counts = { insert: 0, delete: 0 }
  for (let i = 0; i < msg.count; i++) {
    counts[randomEdit(client.ytext, random, deleteRatio)]++
    await pause(msg.interval_ms || 0)
  }
  return { ok: true, inserts: counts.insert, deletes: counts.delete, text: client.ytext.toString() }
}

const status = async (msg) => ({ ok: true, ...getClient(msg.id).status() })

const close = async (msg) => {
  const client = getClient(msg.id)
  clients.delete(msg.id)
  client.destroy()
  return { ok: true }
}

const closeAll = () => {
  for (const client of clients.values()) {
    client.destroy()
  }
  clients.clear()
}

const quit = async () => {
  closeAll()
  // Reply first; exit once the reply is flushed (see `dispatch`).
  setImmediate(() => process.exit(0))
  return { ok: true }
}

const ping = async () => ({ ok: true, clients: [...clients.keys()] })

const COMMANDS = {
  ping,
  connect,
  reconnect,
  set_headers: setHeaders,
  disconnect,
  insert,
  delete: remove,
  text,
  wait_text: waitText,
  wait_synced: waitSynced,
  awareness_set: awarenessSet,
  awareness_states: awarenessStates,
  wait_awareness: waitAwareness,
  state_vector: stateVector,
  encode_state: encodeState,
  apply_update: applyUpdate,
  random_edits: randomEdits,
  status,
  close,
  quit
}

const requireFields = (msg, names) => {
  for (const name of names) {
    if (typeof msg[name] !== 'string') throw new CommandError(`missing string field ${name}`)
  }
}

const timeoutOf = (msg) => (Number.isFinite(msg.timeout_ms) ? msg.timeout_ms : DEFAULT_TIMEOUT_MS)

const toBase64 = (bytes) => Buffer.from(bytes).toString('base64')

const fromBase64 = (text) => new Uint8Array(Buffer.from(String(text), 'base64'))

const reply = (message) => {
  process.stdout.write(JSON.stringify(message) + '\n')
}

const dispatch = async (line) => {
  let msg
  try {
    msg = JSON.parse(line)
  } catch (err) {
    reply({ ok: false, error: `invalid JSON: ${err.message}` })
    return
  }
  const echo = { seq: msg.seq ?? null, id: msg.id ?? null }
  const handler = Object.hasOwn(COMMANDS, msg.cmd) ? COMMANDS[msg.cmd] : undefined
  if (handler === undefined) {
    reply({ ...echo, ok: false, error: `unknown command ${JSON.stringify(msg.cmd)}` })
    return
  }
  try {
    reply({ ...echo, ...(await handler(msg)) })
  } catch (err) {
    // Unexpected errors (a Yjs exception, a bad field) are reported, not fatal: the other
    // clients in this process belong to the same test and must keep running.
    const expected = err instanceof CommandError
    reply({ ...echo, ok: false, error: expected ? err.message : String(err && err.stack) })
  }
}

const main = () => {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  lines.on('line', (line) => {
    if (line.trim() !== '') dispatch(line)
  })
  // The controlling test went away: leave nothing behind.
  lines.on('close', () => {
    closeAll()
    process.exit(0)
  })
}

main()

// The live event stream, GET /api/events: projects, members, documents and
// jobs as they change, so the lists on the page never need a reload.
//
// EventSource cannot send an Authorization header: it is used when the
// server keeps the session in a cookie, which the browser sends by itself.
// Otherwise (or when EventSource gives up) the stream is read with fetch()
// and the bearer token, resuming from the last event id after a break. A
// server without the stream answers 404; the page then simply does without.

import { authorizedFetch } from './api.js'
import { getSession } from './session.js'
import { readEvents } from './sse.js'

export const EVENT_NAMES = [
  'project.created', 'project.updated', 'project.deleted',
  'member.added', 'member.updated', 'member.removed',
  'document.created', 'document.updated', 'document.deleted', 'document.undeleted',
  'job.started', 'job.finished'
]
const PATH = '/api/events'
const RETRY_MS = 3000

/**
 * Deliver each event to `onEvent(name, data)` and call `onOpen()` whenever the
 * stream (re)connects, since events may have been missed meanwhile.
 * Returns `{stop()}`.
 */
export function followEvents ({ onEvent, onOpen }) {
  const aborter = new AbortController()
  const deliver = (name, data) => {
    let parsed
    try {
      parsed = JSON.parse(data)
    } catch {
      return // not ours to interpret; the next event may be fine
    }
    // Events carry an object; anything else is not worth a broken page.
    if (parsed === null || typeof parsed !== 'object') return
    try {
      onEvent(name, parsed)
    } catch (error) {
      console.warn(`could not apply ${name}:`, error)
    }
  }
  const useFetch = (lastId) => readWithFetch({ deliver, onOpen, signal: aborter.signal, lastId })
  let source = null
  if (getSession()?.cookie && typeof EventSource !== 'undefined') {
    source = readWithEventSource({ deliver, onOpen, onGiveUp: useFetch })
  } else {
    useFetch(null)
  }
  return {
    stop () {
      aborter.abort()
      source?.close()
    }
  }
}

function readWithEventSource ({ deliver, onOpen, onGiveUp }) {
  const source = new EventSource(PATH)
  let lastId = null
  for (const name of EVENT_NAMES) {
    source.addEventListener(name, (event) => {
      lastId = event.lastEventId || lastId
      deliver(name, event.data)
    })
  }
  source.addEventListener('open', onOpen)
  source.addEventListener('error', () => {
    // CLOSED means an HTTP error (no cookie, no route): EventSource will not
    // retry, so read with the token instead. Otherwise it retries by itself.
    if (source.readyState === EventSource.CLOSED) onGiveUp(lastId)
  })
  return source
}

/** Resolve after `ms`, or when the browser is back online if it is offline now. */
function pause (ms) {
  if (navigator.onLine) return new Promise((resolve) => setTimeout(resolve, ms))
  return new Promise((resolve) => window.addEventListener('online', resolve, { once: true }))
}

async function readWithFetch ({ deliver, onOpen, signal, lastId }) {
  while (!signal.aborted && getSession()) {
    if (!navigator.onLine) await pause(0)
    if (signal.aborted) return
    try {
      const headers = { Accept: 'text/event-stream' }
      if (lastId) headers['Last-Event-ID'] = lastId
      const response = await authorizedFetch(PATH, { headers, signal })
      if (response.status === 404) return // this server has no event stream
      if (response.ok) {
        onOpen()
        for await (const { event, data, id } of readEvents(response)) {
          lastId = id || lastId
          if (EVENT_NAMES.includes(event)) deliver(event, data)
        }
      }
    } catch {
      if (signal.aborted) return
      // The stream broke (network, proxy, server restart): try again shortly.
    }
    await pause(RETRY_MS)
  }
}

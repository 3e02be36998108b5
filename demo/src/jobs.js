// Run a document: submit a job, then follow its event stream (falling back
// to polling) and report to an output view. Runs that others start are
// followed the same way.

import { api, authorizedFetch } from './api.js'
import { readEvents } from './sse.js'

const FINISHED = new Set(['succeeded', 'failed', 'timed_out', 'cancelled', 'error'])

/**
 * Submit the document's current text as a job and follow it to the end;
 * `by` is the submitting user's id.
 *
 * `view` receives: started(job), status(status), output(stream, text),
 * finished(job). Returns `{id, cancel(), stop()}` right after submission.
 */
export async function runDocument (documentId, view, { by } = {}) {
  const job = await api('POST', '/api/jobs', { document_id: documentId })
  // Whoever submits it started it, whether or not the server's answer says so.
  return followJob({ ...job, submitted_by: job.submitted_by ?? by }, view)
}

/**
 * Follow a job someone (maybe someone else) started, to the end, reporting to
 * `view` as `runDocument` does. Returns `{id, cancel(), stop()}`.
 */
export function followJob (job, view) {
  const aborter = new AbortController()
  view.started(job)
  follow(job.id, view, aborter.signal).catch((error) => {
    if (!aborter.signal.aborted) view.failed(error)
  })
  return {
    id: job.id,
    cancel: () => api('POST', `/api/jobs/${job.id}/cancel`),
    stop: () => aborter.abort()
  }
}

async function follow (jobId, view, signal) {
  try {
    const response = await authorizedFetch(`/api/jobs/${jobId}/events`, {
      headers: { Accept: 'text/event-stream' },
      signal
    })
    if (response.ok) {
      for await (const { event, data } of readEvents(response)) {
        const payload = JSON.parse(data)
        if (event === 'status') view.status(payload.status)
        else if (event === 'stdout' || event === 'stderr') view.output(event, payload.text)
        else if (event === 'done') return view.finished(payload)
      }
    }
  } catch (error) {
    if (signal.aborted) return
    // The stream broke (proxy, network): the job's record still has it all.
  }
  await poll(jobId, view, signal)
}

async function poll (jobId, view, signal) {
  for (let delay = 250; !signal.aborted; delay = Math.min(delay * 2, 2000)) {
    const job = await api('GET', `/api/jobs/${jobId}`)
    if (FINISHED.has(job.status)) return view.finished(job)
    view.status(job.status)
    await new Promise((resolve) => setTimeout(resolve, delay))
  }
}

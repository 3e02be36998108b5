// The output pane: a job's status, who started it, and what it printed.

import { $, h, show } from './dom.js'
import { getSession } from './session.js'

/** The id of whoever started `job`, if the server says (`started_by` or `submitted_by`). */
export function starterId (job) {
  const by = job.started_by ?? job.submitted_by ?? null
  return by && typeof by === 'object' ? by.id : by
}

/** "you", the starter's display name (from the job or from `members`), or "someone else". */
function starterName (job, members) {
  const id = starterId(job)
  if (id && id === getSession()?.user.id) return 'you'
  const by = job.started_by ?? job.submitted_by
  const named = by && typeof by === 'object' ? by.display_name || by.name : job.started_by_name
  return named || members.find((m) => m.user_id === id)?.display_name || 'someone else'
}

/** Show a job status, e.g. "succeeded" with " · exit 0 · 12 ms". */
export function jobStatus (status, detail = '') {
  const box = $('#job-status')
  box.textContent = status.replace('_', ' ') + detail
  box.className = `job-status ${status}`
  box.dataset.status = status
}

/** Empty the pane, with `hint` in its place. */
export function resetOutput (hint) {
  $('#output').replaceChildren(h('span', { class: 'muted' }, hint))
  $('#job-status').textContent = ''
  $('#job-status').className = 'job-status'
  $('#job-by').textContent = ''
  show($('#cancel-job'), false)
}

function finalOutput (job) {
  const out = $('#output')
  out.replaceChildren()
  if (job.stdout) out.append(h('span', { class: 'stdout' }, job.stdout))
  if (job.stderr) out.append(h('span', { class: 'stderr' }, job.stderr))
  if (job.error) out.append(h('span', { class: 'stderr' }, job.error))
  if (!out.childNodes.length) out.append(h('span', { class: 'muted' }, '(no output)'))
}

/**
 * The view a followed job reports to (see jobs.js). `context()` gives
 * `{canRun, members}` as they are at each report: whether this person may
 * run (and so cancel), and the project's members, to name the starter.
 */
export function outputView (context) {
  const done = () => {
    show($('#cancel-job'), false)
    $('#run').disabled = !context().canRun
  }
  return {
    started (job) {
      const { canRun, members } = context()
      $('#output').replaceChildren()
      $('#job-status').dataset.jobId = job.id
      $('#job-by').textContent = `run by ${starterName(job, members)}`
      jobStatus(job.status)
      show($('#cancel-job'), canRun)
    },
    status (status) {
      jobStatus(status)
    },
    output (stream, text) {
      $('#output').append(h('span', { class: stream }, text))
    },
    finished (job) {
      const parts = []
      if (job.exit_code !== null && job.exit_code !== undefined) parts.push(`exit ${job.exit_code}`)
      if (job.duration_ms !== null && job.duration_ms !== undefined) parts.push(`${job.duration_ms} ms`)
      if (job.truncated) parts.push('output truncated')
      jobStatus(job.status, parts.length ? ` · ${parts.join(' · ')}` : '')
      // The final record holds everything, whatever the stream delivered.
      finalOutput(job)
      done()
    },
    failed (error) {
      jobStatus('error', `: ${error.describe ? error.describe() : error.message}`)
      done()
    }
  }
}

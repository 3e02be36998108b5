// The history panel of the open document: editing sessions, a slider through
// every version (read-only), what changed since that version coloured by
// author, who wrote each line, and buttons to restore, roll back, fork and
// merge back. Everyone else with the document open gets a notice when someone
// restores, rolls back or merges (read from the change feed).

import { api, authorizedFetch } from './api.js'
import { h, toast } from './dom.js'
import { colorFor } from './editor.js'
import { getSession } from './session.js'
import { readEvents } from './sse.js'

const NOTICE_KINDS = { restore: 'restored an earlier version', rollback: 'rolled back changes', merge: 'merged changes in' }

/**
 * Build the panel inside `root` for `doc`; `canWrite` shows the write buttons.
 * Returns `{destroy}`.
 */
export function openHistory (root, { document: doc, canWrite }) {
  const panel = new HistoryPanel(root, doc, canWrite)
  panel.refresh().catch(report)
  panel.follow()
  return panel
}

function report (error) {
  toast(error.describe ? error.describe() : String(error.message || error), 'error')
}

class HistoryPanel {
  constructor (root, doc, canWrite) {
    this.root = root
    this.doc = doc
    this.canWrite = canWrite
    this.names = new Map()
    this.head = 0
    this.abort = new AbortController()
    this.build()
  }

  build () {
    const base = `/api/documents/${this.doc.id}`
    this.base = base
    this.slider = h('input', { type: 'range', id: 'history-slider', min: '0', max: '0', value: '0', 'aria-label': 'Version' })
    this.slider.addEventListener('input', () => this.showVersion().catch(report))
    this.seqLabel = h('span', { id: 'history-seq', class: 'muted' })
    this.sessions = h('ul', { id: 'history-sessions', class: 'list' })
    this.authors = h('div', { id: 'history-authors', class: 'history-actions' })
    this.changes = h('pre', { id: 'history-changes', class: 'history-text', 'aria-label': 'Changes since this version' })
    this.blame = h('ol', { id: 'history-blame', class: 'history-blame', 'aria-label': 'Who wrote each line' })
    this.notice = h('p', { id: 'history-notice', class: 'notice', role: 'status', hidden: true })
    this.mergeButton = h('button', { type: 'button', hidden: true, onclick: () => this.mergeBack().catch(report) }, 'Merge back')
    const writes = this.canWrite
      ? [
          h('button', { type: 'button', onclick: () => this.restore().catch(report) }, 'Restore this version'),
          h('button', { type: 'button', onclick: () => this.fork().catch(report) }, 'Fork this version'),
          this.mergeButton
        ]
      : []
    this.root.replaceChildren(
      h('div', { class: 'history-bar' },
        h('strong', {}, 'History'),
        h('button', { type: 'button', class: 'link', onclick: () => this.refresh().catch(report) }, 'Refresh')),
      this.notice,
      h('label', { class: 'history-slider' }, 'Version ', this.slider, ' ', this.seqLabel),
      h('div', { class: 'history-actions' }, ...writes),
      this.changes,
      h('details', {}, h('summary', {}, 'Who wrote each line'), this.blame),
      h('h3', {}, 'Sessions'),
      this.sessions,
      this.authors
    )
  }

  async refresh () {
    const [activity, history] = await Promise.all([
      api('GET', `${this.base}/activity?gap_ms=2000&limit=50`),
      api('GET', `${this.base}/history?limit=1`)
    ])
    for (const session of activity.items) {
      for (const author of session.authors) this.names.set(author.id, author.display_name)
    }
    this.head = Math.max(this.head, activity.items[0]?.to_seq || 0)
    const first = history.items[0]
    this.forkOf = first && first.kind === 'fork' && first.meta ? first.meta.source_doc_id : null
    this.mergeButton.hidden = !this.forkOf
    this.slider.max = String(this.head)
    if (Number(this.slider.value) > this.head || !this.touched) this.slider.value = String(this.head)
    this.renderSessions(activity.items)
    await this.showVersion(false)
  }

  renderSessions (items) {
    this.sessions.replaceChildren(...items.map((s) => {
      const who = s.authors.map((a) => a.display_name || 'someone').join(', ')
      const label = `${who} · #${s.from_seq}–${s.to_seq} · +${s.inserted} −${s.deleted}` +
        (s.sources.length ? ` · ${s.sources.join(', ')}` : '')
      const undo = this.canWrite
        ? h('button', {
          type: 'button',
          class: 'link',
          'aria-label': `Roll back session ${s.from_seq}-${s.to_seq}`,
          onclick: () => this.rollback({ after_seq: s.from_seq - 1, through_seq: s.to_seq }).catch(report)
        }, 'Roll back')
        : null
      return h('li', { class: 'history-session' }, h('span', {}, label), undo)
    }))
    const authors = [...this.names.entries()]
    this.authors.replaceChildren(...(this.canWrite
      ? authors.map(([id, name]) => h('button', {
        type: 'button',
        onclick: () => this.rollback({ by: [id] }).catch(report)
      }, `Roll back ${name || 'someone'}`))
      : []))
  }

  /** The text at the slider's version, the changes since it, and blame per line. */
  async showVersion (touched = true) {
    if (touched) this.touched = true
    const seq = Number(this.slider.value)
    this.seqLabel.textContent = `#${seq} of ${this.head}`
    const changeset = await api('GET', `${this.base}/changeset?from_seq=${seq}&to_seq=${this.head}`)
    this.changes.replaceChildren(...changeset.runs.map((run) => {
      if (run.op === 'keep') return document.createTextNode(run.text)
      const tag = run.op === 'insert' ? 'ins' : 'del'
      const color = run.author_id ? colorFor(run.author_id) : '#888'
      const title = `${run.author_name || 'someone'} · #${run.seq}${run.source ? ` · ${run.source}` : ''}`
      return h(tag, { class: `history-${run.op}`, title, style: { borderColor: color, background: `${color}22` } }, run.text)
    }))
    if (this.blame.closest('details')?.open || !touched) await this.showBlame()
  }

  async showBlame () {
    const blame = await api('GET', `${this.base}/blame`)
    const lines = blame.text.split('\n')
    let offset = 0
    this.blame.replaceChildren(...lines.map((line) => {
      const end = offset + line.length
      const span = blame.spans.find((s) => s.end > offset && s.start <= end) || null
      offset = end + 1
      const name = span ? (span.author_name || 'someone') : ''
      return h('li', {}, h('span', { class: 'history-author', style: { color: span?.author_id ? colorFor(span.author_id) : '#888' } }, name), ' ', line)
    }))
  }

  async rollback (filters) {
    const answer = await api('POST', `${this.base}/rollback`, filters)
    toast(`Rolled back ${answer.undone_events} change(s)`)
    await this.refresh()
  }

  async restore () {
    const seq = Number(this.slider.value)
    await api('POST', `${this.base}/restore`, { seq })
    toast(`Restored version #${seq}`)
    this.touched = false
    await this.refresh()
  }

  async fork () {
    const seq = Number(this.slider.value)
    const copy = await api('POST', `${this.base}/fork`, { name: `${this.doc.name} (fork)`, seq })
    location.hash = `#/projects/${copy.project_id}/documents/${copy.id}`
  }

  async mergeBack () {
    const answer = await api('POST', `/api/documents/${this.forkOf}/merge`, { from_document_id: this.doc.id })
    toast(answer.seq === null ? 'Nothing new to merge' : `Merged ${answer.merged_events} change(s) back`)
  }

  /** Follow the change feed: move the slider's end, and tell of others' restores. */
  async follow () {
    const me = getSession()?.user?.id
    try {
      const response = await authorizedFetch(`${this.base}/changes?after=${this.doc.head_seq}`, { signal: this.abort.signal })
      if (!response.ok) return
      for await (const message of readEvents(response)) {
        const event = JSON.parse(message.data)
        this.head = Math.max(this.head, event.seq)
        this.slider.max = String(this.head)
        if (NOTICE_KINDS[event.kind] && event.author_id !== me) {
          await this.refresh().catch(() => {}) // learns the author's name too
          const name = this.names.get(event.author_id) || 'Someone'
          this.notice.textContent = `${name} ${NOTICE_KINDS[event.kind]} (#${event.seq})`
          this.notice.hidden = false
          toast(this.notice.textContent)
        }
      }
    } catch (error) {
      if (error.name !== 'AbortError') console.warn('history feed stopped', error)
    }
  }

  destroy () {
    this.abort.abort()
    this.root.replaceChildren()
  }
}

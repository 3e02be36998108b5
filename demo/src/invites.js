// Invitations: the owner makes a link with a role (and, optionally, the one
// email address allowed to use it); whoever opens the link joins the project
// once signed in. The link carries the token in the URL fragment
// (#invite=TOKEN), which browsers never send to servers or in a Referer.

import { api, ApiError } from './api.js'
import { $, onSubmit, show, toast } from './dom.js'

const PENDING_KEY = 'collab.invite'
const HASH_PREFIX = '#invite='
// Tokens are URL-safe; anything else in the fragment is not an invitation.
const TOKEN_PATTERN = /^[\w-]{8,512}$/

/**
 * If the URL is an invitation link, remember its token for after sign-in and
 * take it out of the address bar (and so out of the history). Returns true
 * when the URL was an invitation.
 */
export function takeInviteFromUrl () {
  if (!location.hash.startsWith(HASH_PREFIX)) return false
  const token = decodeURIComponent(location.hash.slice(HASH_PREFIX.length))
  history.replaceState(null, '', location.pathname + location.search)
  if (!TOKEN_PATTERN.test(token)) {
    toast('This invitation link is damaged; ask for a new one.', 'error')
    return false
  }
  sessionStorage.setItem(PENDING_KEY, token)
  return true
}

/**
 * Accept the remembered invitation, if any, as the signed-in user. Resolves
 * to the joined project, or null (no invitation, or it was refused).
 */
export async function acceptPendingInvite () {
  const token = sessionStorage.getItem(PENDING_KEY)
  if (token === null) return null
  sessionStorage.removeItem(PENDING_KEY)
  try {
    const project = await api('POST', `/api/invites/${encodeURIComponent(token)}/accept`)
    toast(`You joined ${project.name} as ${project.role}.`)
    return project
  } catch (error) {
    if (!(error instanceof ApiError)) throw error
    const gone = [404, 410].includes(error.status)
    toast(gone ? 'This invitation is no longer valid (used, expired or withdrawn).' : error.describe(), 'error')
    return null
  }
}

/** The link to share: the server's, or one built on this page's address. */
function linkOf (invite) {
  return invite.url || `${location.origin}/${HASH_PREFIX}${encodeURIComponent(invite.token)}`
}

/** Wire the owner's "invite by link" form once; `current()` gives the selected project. */
export function setupInviteForm (current) {
  const output = $('#invite-link')
  const field = $('#invite-url')
  onSubmit($('#invite-form'), async ({ role, email }) => {
    const body = { role }
    if (email.trim()) body.email = email.trim()
    const invite = await api('POST', `/api/projects/${current().project.id}/invites`, body)
    field.value = linkOf(invite)
    output.dataset.role = invite.role
    show(output)
    field.select()
  })
  $('#copy-invite').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(field.value)
      toast('Invitation link copied.')
    } catch {
      // No clipboard permission (or not a secure context): leave it selected.
      field.select()
      toast('Press Ctrl+C to copy the selected link.')
    }
  })
}

/** Show the invitation form to owners only, and forget the last link. */
export function resetInviteForm (project) {
  show($('#invite-form'), project.role === 'owner')
  show($('#invite-link'), false)
  $('#invite-url').value = ''
}

// The members panel: who is in the project, and (for the owner) adding people
// by email as editor or viewer, changing their role or removing them.

import { api } from './api.js'
import { $, h, onSubmit, show, toast } from './dom.js'

const ROLES = ['editor', 'viewer']

/** Fill the members panel for `project`; `me` is the signed-in user. Resolves to the members. */
export async function renderMembers (project, me) {
  const list = $('#members')
  const isOwner = project.role === 'owner'
  const { items } = await api('GET', `/api/projects/${project.id}/members`)
  list.replaceChildren(...items.map((member) => memberRow(project, member, me, isOwner)))
  show($('#add-member'), isOwner)
  return items
}

function memberRow (project, member, me, isOwner) {
  const you = member.user_id === me.id ? ' (you)' : ''
  const name = h('span', { class: 'member-name', title: member.email }, member.display_name + you)
  let role = h('span', { class: `role ${member.role}` }, member.role)
  let remove = null
  if (isOwner && member.role !== 'owner') {
    role = h('select', {
      class: 'member-role',
      'aria-label': `Role of ${member.display_name}`,
      onchange: async (event) => {
        await update(project, me, 'PATCH', member, { role: event.target.value })
      }
    }, ROLES.map((r) => h('option', { value: r, selected: r === member.role }, r)))
    remove = h('button', {
      class: 'icon',
      title: `Remove ${member.display_name}`,
      'aria-label': `Remove ${member.display_name}`,
      onclick: () => update(project, me, 'DELETE', member)
    }, '×')
  }
  return h('li', { class: 'member', dataset: { userId: member.user_id } }, name, role, remove)
}

async function update (project, me, method, member, body) {
  try {
    await api(method, `/api/projects/${project.id}/members/${member.user_id}`, body)
    toast(method === 'DELETE' ? `${member.display_name} removed` : `${member.display_name} is now ${body.role}`)
  } catch (error) {
    toast(error.describe(), 'error')
  }
  await renderMembers(project, me)
}

/** Wire the "add member" form once; `current()` gives the selected project and user. */
export function setupMemberForm (current) {
  onSubmit($('#add-member'), async ({ email, role }, form) => {
    const { project, me } = current()
    try {
      await api('POST', `/api/projects/${project.id}/members`, { email: email.trim(), role })
    } catch (error) {
      if (error.code === 'user_not_found') {
        throw new Error(`No account uses ${email.trim()}: they need to register first.`)
      }
      throw error
    }
    form.reset()
    toast(`${email.trim()} added as ${role}`)
    await renderMembers(project, me)
  })
}

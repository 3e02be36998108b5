// Small DOM helpers. Text always goes in through textContent, never innerHTML,
// so names and file contents from other users cannot inject markup.

export const $ = (selector, root = document) => root.querySelector(selector)

/** `h('li', {class: 'x', onclick}, 'text', child)`: build an element. */
export function h (tag, props = {}, ...children) {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value)
    else if (name === 'class') element.className = value
    else if (name === 'dataset') Object.assign(element.dataset, value)
    else if (name === 'style') Object.assign(element.style, value)
    else element.setAttribute(name, value === true ? '' : value)
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false))
  return element
}

export function show (element, visible = true) {
  element.hidden = !visible
}

let toastTimer = null

/** A short message at the bottom of the page; `kind` is "info" or "error". */
export function toast (message, kind = 'info') {
  const box = $('#toast')
  box.textContent = message
  box.className = `toast ${kind} visible`
  clearTimeout(toastTimer)
  toastTimer = setTimeout(() => { box.className = 'toast' }, kind === 'error' ? 6000 : 3000)
}

/** Run an async form handler with the submit button disabled; errors become toasts. */
export function onSubmit (form, handler) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const button = form.querySelector('button[type=submit], button:not([type])')
    if (button) button.disabled = true
    try {
      await handler(Object.fromEntries(new FormData(form)), form)
    } catch (error) {
      toast(error.describe ? error.describe() : String(error.message || error), 'error')
    } finally {
      if (button) button.disabled = false
    }
  })
}

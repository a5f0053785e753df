"""The annotation app's keyboard script, shortcuts overlay and style sheet (injected with ``launch(head=, css=)``).

Buttons carry a ``key-*`` class; a key press clicks the first *visible* button with the matching class, so the
same script drives the Annotate and Adjudicate tabs (the hidden tab's buttons are skipped).
"""

from apps.markdown_view import pygments_css

SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("1 … 9", "choose: response A / B of a pair, the n-th class, or the next candidate in your order"),
    ("01 … 20", "with more than nine classes or candidates: two keys, as on the buttons"),
    ("T", "tie (pairs)"),
    ("0", "both bad (pairs)"),
    ("R", "reset the candidate order"),
    ("Ctrl + Enter", "submit (also from inside the rewrite box)"),
    ("E", "rewrite: edit the text (Esc leaves the box)"),
    ("Ctrl + Shift + Enter", "rewrite: accept the text as is (after reading it)"),
    ("1 … 9 (review)", "a disputed rewrite: put that person's text in the editor"),
    ("S", "skip this task (it comes back at the end of your queue)"),
    ("Ctrl + Z", "undo your last submission (inside a text box: undo typing)"),
    ("?", "show or hide this panel"),
)

_ROWS = "".join(f"<tr><th><kbd>{k}</kbd></th><td>{v}</td></tr>" for k, v in SHORTCUTS)

HEAD = """
<script>
(() => {
  const PANEL_HTML = `<div class="shortcuts-card" role="dialog" aria-label="Keyboard shortcuts">
    <h3>Keyboard shortcuts</h3><table>""" + _ROWS + """</table>
    <p>Letters and digits are ignored while you type in a text box.</p></div>`;
  const ENDED = /session expired|not logged in|account disabled/i;
  const visible = (el) => !!el && el.offsetParent !== null && !el.disabled;
  const clickFirst = (cls) => {
    for (const el of document.querySelectorAll('.' + cls)) {
      if (visible(el)) { el.click(); return true; }
    }
    return false;
  };
  const typing = (el) => !!el && (el.tagName === 'TEXTAREA' || el.isContentEditable ||
    (el.tagName === 'INPUT' && !['button', 'checkbox', 'radio', 'submit'].includes(el.type)));
  const togglePanel = (force) => {
    let panel = document.getElementById('shortcuts-panel');
    if (!panel) {
      panel = document.createElement('div');
      panel.id = 'shortcuts-panel';
      panel.innerHTML = PANEL_HTML;
      panel.hidden = true;
      panel.addEventListener('click', () => { panel.hidden = true; });
      document.body.appendChild(panel);
    }
    panel.hidden = force === undefined ? !panel.hidden : !force;
  };
  window.curateShortcuts = togglePanel;
  // Two-key choice (more than nine buttons): the first digit waits here, shown beside the buttons.
  let pending = null, pendingTimer = null;
  const setPending = (digit) => {
    pending = digit;
    clearTimeout(pendingTimer);
    for (const el of document.querySelectorAll('.pending-key')) el.remove();
    if (digit === null) return;
    const row = [...document.querySelectorAll('.choice-row')].find(visible) ||
                [...document.querySelectorAll('.choice-row')].find((r) => r.offsetParent !== null);
    if (row) {
      const hint = document.createElement('span');
      hint.className = 'pending-key';
      hint.textContent = digit + '_ : press the second digit';
      row.prepend(hint);
    }
    pendingTimer = setTimeout(() => setPending(null), 2500);
  };
  // Two-key mode shows on the buttons ("01 · ..."): read from their text, without forcing a layout.
  const twoKeys = () => [...document.querySelectorAll('.key2-01')].some(
    (b) => b.textContent.trim().startsWith('01') && visible(b));
  document.addEventListener('click', (e) => {
    if (!e.target.closest) return;
    if (e.target.closest('#shortcuts-toggle')) togglePanel();
    const use = e.target.closest('.use-rewrite');
    if (use) {  // a reviewer takes one person's rewrite into the editor (then edits or records it)
      const text = use.closest('.rewrite-col').querySelector('.full-text').textContent;
      const box = [...document.querySelectorAll('.rewrite-box textarea')].find(visible);
      if (box) { box.value = text; box.dispatchEvent(new Event('input', {bubbles: true})); }
    }
  });
  // Gradio's text box tells the server (draft, diff) on key presses, not on every change of its text: a paste, a
  // cut, a drop, Backspace, undo, an input method or a value set here changed the box without a word, and a
  // reload lost it. Any such change is followed by a key press event, which the box does act on.
  const nudge = (box) => box.dispatchEvent(new KeyboardEvent('keypress', {key: 'Unidentified', bubbles: true}));
  document.addEventListener('input', (e) => {
    if (e.target && e.target.tagName === 'TEXTAREA' && !e.isComposing) nudge(e.target);
  }, true);
  document.addEventListener('compositionend', (e) => {
    if (e.target && e.target.tagName === 'TEXTAREA') nudge(e.target);
  }, true);
  document.addEventListener('keydown', (e) => {
    if (e.isComposing || e.altKey) return;
    const ctrl = e.ctrlKey || e.metaKey;
    const inText = typing(e.target);
    if (ctrl && e.key === 'Enter') {
      if (!e.repeat && clickFirst(e.shiftKey ? 'key-accept' : 'key-submit')) e.preventDefault();
      return;
    }
    if (ctrl && !e.shiftKey && (e.key === 'z' || e.key === 'Z')) {
      if (!inText && !e.repeat && clickFirst('key-undo')) e.preventDefault();
      return;
    }
    if (inText && e.key === 'Escape') { e.target.blur(); e.preventDefault(); return; }
    if (ctrl || inText) return;
    if (e.key === '?') { togglePanel(); e.preventDefault(); return; }
    if (e.key === 'Escape') { togglePanel(false); setPending(null); return; }
    if (e.repeat) return;
    const key = e.key.length === 1 ? e.key.toLowerCase() : '';
    if (key === 'e') {
      const box = [...document.querySelectorAll('.rewrite-box textarea')].find(visible);
      if (box) { box.focus(); box.setSelectionRange(0, 0); box.scrollTop = 0; e.preventDefault(); }
      return;
    }
    if (/^[0-9]$/.test(key) && (pending !== null || twoKeys())) {
      if (pending === null) { setPending(key); e.preventDefault(); return; }
      const cls = 'key2-' + pending + key;
      setPending(null);
      if (clickFirst(cls)) e.preventDefault();
      return;
    }
    let cls = null;
    if (/^[0-9]$/.test(key)) cls = 'key-' + key;
    else if (key === 't') cls = 'key-t';
    else if (key === 's') cls = 'key-skip';
    else if (key === 'r') cls = 'key-reset';
    if (cls && clickFirst(cls)) e.preventDefault();
  }, true);
  // A new task starts at the top of the page; the page keeps room for the action bar; an ended session
  // (expired, logged out elsewhere, disabled account) goes back to the login page. Each is watched narrowly
  // (the task lines, the bars' size, the toasts): a new task changes hundreds of nodes, none of which may cost
  // a forced layout here.
  let shownTask = '';
  let leaving = false;
  // Run as soon as the task line changes, before any later key press is handled: a digit typed right after a
  // new task appears must not be wiped by this reset (an animation frame later would be too late).
  const onTask = (info) => {
    const now = info.textContent.split('·').slice(0, 2).join('·');
    if (!now || now === shownTask || info.offsetParent === null) return;
    shownTask = now;
    window.scrollTo(0, 0);
    if (typing(document.activeElement)) document.activeElement.blur();  // keys act on the new task
    for (const close of document.querySelectorAll('[data-testid="toast-close"]')) close.click();  // stale now
    setPending(null);
  };
  const bars = new ResizeObserver(() => {
    let room = 0;
    for (const bar of document.querySelectorAll('.action-bar')) room = Math.max(room, bar.offsetHeight);
    document.body.style.paddingBottom = room + 16 + 'px';
  });
  const checkToasts = () => {
    if (leaving) return;
    for (const toast of document.querySelectorAll('[data-testid="toast-body"]')) {
      if (ENDED.test(toast.innerText || '')) {
        leaving = true;
        setTimeout(() => { window.location.href = window.location.pathname; }, 1200);
      }
    }
  };
  const watched = new Set();
  const attach = () => {
    for (const id of ['task-info', 'adj-task-info']) {
      const info = document.getElementById(id);
      if (info && !watched.has(info)) {
        watched.add(info);
        new MutationObserver(() => onTask(info)).observe(info, {childList: true, subtree: true,
                                                                 characterData: true});
        onTask(info);
      }
    }
    for (const bar of document.querySelectorAll('.action-bar')) {
      if (!watched.has(bar)) { watched.add(bar); bars.observe(bar); }
    }
  };
  // One look per frame, whatever the number of changed nodes (a new task adds hundreds): walking every
  // mutation record here cost ~3 ms per task.
  let looking = false;
  new MutationObserver(() => {
    if (looking) return;
    looking = true;
    requestAnimationFrame(() => {
      looking = false;
      if (watched.size < 4) attach();
      if (document.querySelector('.toast-wrap [data-testid="toast-body"]')) checkToasts();
    });
  }).observe(document.body, {childList: true, subtree: true});
})();
</script>
"""

CSS = """
.gradio-container { width: 100% !important; max-width: 1240px !important; margin: 0 auto !important;
  padding-top: 0 !important; }
.gradio-container > .main, .gradio-container .wrap.contain { padding-top: 0 !important; }
.app-header { margin: 0 !important; }
.app-header > div { padding: 0 !important; min-height: 0 !important; }
.app-header { align-items: center; min-height: 0 !important; }
.header-line { font-size: 0.9rem; padding: 2px 0; }
#tabs > .tab-wrapper, #tabs .tab-container { min-height: 0; }
.task-info { min-height: 0; font-size: 0.95rem; }
.task-info p { margin: 0 !important; }
.guidelines-box { padding: 2px 10px !important; }
.guidelines-box > button, .guidelines-box .label-wrap { padding: 4px 0 !important; font-size: 0.9rem; }
.text-block { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 1rem; line-height: 1.5; padding: 10px 14px;
  border: 1px solid var(--border-color-primary); border-radius: 8px; background: var(--background-fill-secondary); }
.text-block.rendered { white-space: normal; }
.block-title { font-size: 0.75rem; font-weight: 600; text-transform: uppercase; letter-spacing: 0.04em;
  color: var(--body-text-color-subdued); margin: 2px 0 4px; }
.md > :first-child { margin-top: 0; }
.md > :last-child { margin-bottom: 0; }
.md h1, .md h2, .md h3, .md h4 { font-size: 1.05rem; margin: 0.8em 0 0.4em; }
.md p, .md ul, .md ol { margin: 0.45em 0; }
.md ul, .md ol { padding-left: 1.6em; }
.md ul { list-style: disc; }
.md ol { list-style: decimal; }
.md code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.88em;
  background: rgba(127, 127, 127, 0.12); padding: 0 3px; border-radius: 3px; }
.md pre, .md .highlight pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.85rem;
  line-height: 1.4; white-space: pre; overflow-x: auto; padding: 8px 10px; border-radius: 6px; margin: 0.5em 0;
  background: #f6f8fa; color: #1f2328; }
.md pre code { background: none; padding: 0; }
.md table { border-collapse: collapse; margin: 0.5em 0; }
.md th, .md td { border: 1px solid var(--border-color-primary); padding: 3px 8px; text-align: left; }
.md.plain { white-space: pre-wrap; }
.pair-row > div { min-width: 0; }
.candidate { margin-bottom: 8px; }
.suggestion { min-height: 0; }
.status-line { min-height: 1.4em; color: var(--body-text-color-subdued); font-size: 0.9rem; }
.status-line p { margin: 0 !important; }
.diff { white-space: pre-wrap; line-height: 1.5; padding: 6px 10px; border-radius: 8px; font-size: 0.92rem;
  border: 1px dashed var(--border-color-primary); min-height: 2em; }
.bar-diff .diff { max-height: 4.8em; overflow-y: auto; padding: 4px 10px; }
.bar-diff .block-title { display: none; }
.diff ins { background: #d3f5d3; color: #14532d; text-decoration: none; }
.diff del { background: #fcd9d9; color: #7f1d1d; }
.diff .elided { color: var(--body-text-color-subdued); }
.use-rewrite { margin: 4px 0; padding: 2px 10px; border: 1px solid var(--border-color-primary); border-radius: 6px;
  background: var(--background-fill-secondary); color: var(--body-text-color); cursor: pointer; font-size: 0.85rem; }
.rewrites-side { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 10px; }
.answers-table { width: 100%; border-collapse: collapse; }
.answers-table th, .answers-table td { text-align: left; padding: 6px 10px;
  border-bottom: 1px solid var(--border-color-primary); }
.action-bar { position: fixed !important; left: 0; right: 0; bottom: 0; z-index: 50; gap: 6px !important;
  padding: 8px max(16px, calc((100vw - 1240px) / 2 + 16px)) 10px !important; max-height: 45vh; overflow-y: auto;
  background: var(--background-fill-primary, #fff); border-top: 1px solid var(--border-color-primary);
  box-shadow: 0 -4px 16px rgba(0, 0, 0, 0.08); }
.action-bar > .row, .action-bar .form { gap: 6px !important; }
.bar-top { align-items: center; flex-wrap: nowrap !important; }
.bar-top > div { min-width: 0 !important; }
.bar-progress { flex: 0 0 320px !important; }
.progress-wrap { display: flex; align-items: center; gap: 8px; font-size: 0.85rem; white-space: nowrap; }
.progress-bar { flex: 1; height: 8px; border-radius: 4px; background: var(--border-color-primary); overflow: hidden;
  min-width: 80px; }
.progress-bar > div { height: 100%; background: var(--color-accent, #6366f1); }
.pick-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(175px, 1fr)); gap: 6px; }
.pick-row { display: inline-flex; gap: 6px; flex-wrap: nowrap; }
.pick { border: 1px solid var(--button-secondary-border-color); background: var(--button-secondary-background-fill);
  color: var(--button-secondary-text-color); border-radius: var(--button-large-radius, 8px); cursor: pointer;
  font-weight: 600; font-size: 0.9rem; min-height: 38px; line-height: 1.2; padding: 4px 14px;
  box-shadow: var(--button-secondary-shadow); }
.pick:hover { background: var(--button-secondary-background-fill-hover); }
.pick.primary { background: var(--button-primary-background-fill); border-color: var(--button-primary-border-color);
  color: var(--button-primary-text-color); }
.pick.choice-btn { width: 100%; height: 100%; text-align: left; white-space: normal; overflow-wrap: anywhere;
  padding: 4px 10px; font-weight: 500; }
.pair-btn { white-space: nowrap; }
.pair-picks { flex: 0 0 auto !important; width: auto !important; }
.md li > p { margin: 0; }
.md li { margin: 0.1em 0; }
.bar-actions button { white-space: nowrap; }
.bar-actions { align-items: center; flex-wrap: nowrap !important; }
.pending-key { align-self: center; font-weight: 700; padding: 0 8px; color: var(--color-accent, #6366f1); }
.toast-message-item:not(:last-of-type), .toast-separator, .toast-count { display: none !important; }
#shortcuts-toggle { float: right; cursor: pointer; border: 1px solid var(--border-color-primary); border-radius: 6px;
  padding: 2px 10px; background: var(--background-fill-secondary); color: var(--body-text-color); }
#shortcuts-panel { position: fixed; inset: 0; background: rgba(0, 0, 0, 0.35); z-index: 1000;
  display: flex; align-items: center; justify-content: center; }
#shortcuts-panel[hidden] { display: none; }
#shortcuts-panel .shortcuts-card { background: var(--background-fill-primary, #fff); color: var(--body-text-color);
  padding: 18px 24px; border-radius: 10px; max-width: 600px; box-shadow: 0 8px 30px rgba(0, 0, 0, 0.25); }
#shortcuts-panel th { text-align: left; padding: 4px 14px 4px 0; white-space: nowrap; }
#shortcuts-panel kbd { font-family: ui-monospace, monospace; border: 1px solid #bbb; border-radius: 4px;
  padding: 1px 6px; background: #f5f5f5; color: #222; }
""" + pygments_css()

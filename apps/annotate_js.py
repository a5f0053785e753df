"""The annotation app's keyboard script, shortcuts overlay and style sheet (injected with ``launch(head=, css=)``).

Buttons carry a ``key-*`` class; a key press clicks the first *visible* button with the matching class, so the
same script drives the Annotate and Adjudicate tabs (the hidden tab's buttons are skipped).
"""

SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("1 … 9", "choose: response A / B of a pair, the n-th class, or the next candidate in your order"),
    ("T", "tie (pairs)"),
    ("0", "both bad (pairs)"),
    ("R", "reset the candidate order"),
    ("Ctrl + Enter", "submit (also from inside the rewrite box)"),
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
  document.addEventListener('click', (e) => {
    if (e.target.closest && e.target.closest('#shortcuts-toggle')) togglePanel();
  });
  document.addEventListener('keydown', (e) => {
    if (e.isComposing || e.altKey) return;
    const ctrl = e.ctrlKey || e.metaKey;
    const inText = typing(e.target);
    if (ctrl && e.key === 'Enter') {
      if (!e.repeat && clickFirst('key-submit')) e.preventDefault();
      return;
    }
    if (ctrl && !e.shiftKey && (e.key === 'z' || e.key === 'Z')) {
      if (!inText && !e.repeat && clickFirst('key-undo')) e.preventDefault();
      return;
    }
    if (ctrl || inText) return;
    if (e.key === '?') { togglePanel(); e.preventDefault(); return; }
    if (e.key === 'Escape') { togglePanel(false); return; }
    if (e.repeat) return;
    const key = e.key.length === 1 ? e.key.toLowerCase() : '';
    let cls = null;
    if (/^[0-9]$/.test(key)) cls = 'key-' + key;
    else if (key === 't') cls = 'key-t';
    else if (key === 's') cls = 'key-skip';
    else if (key === 'r') cls = 'key-reset';
    if (cls && clickFirst(cls)) e.preventDefault();
  }, true);
})();
</script>
"""

CSS = """
.gradio-container { width: 100% !important; max-width: 1200px !important; margin: 0 auto !important; }
.text-block { white-space: pre-wrap; font-size: 1.05rem; line-height: 1.55; padding: 12px 14px;
  border: 1px solid var(--border-color-primary); border-radius: 8px; background: var(--background-fill-secondary);
  max-height: 420px; overflow-y: auto; }
.block-title { font-size: 0.8rem; font-weight: 600; text-transform: uppercase; letter-spacing: 0.04em;
  color: var(--body-text-color-subdued); margin: 2px 0 4px; }
.candidate { margin-bottom: 8px; }
.candidate .num { display: inline-block; min-width: 1.6em; font-weight: 700; }
.task-info { min-height: 1.6em; }
.status-line { min-height: 1.6em; color: var(--body-text-color-subdued); }
.suggestion { min-height: 1.6em; }
.diff { white-space: pre-wrap; line-height: 1.55; padding: 8px 12px; border-radius: 8px;
  border: 1px dashed var(--border-color-primary); min-height: 2.5em; }
.diff ins { background: #d3f5d3; color: #14532d; text-decoration: none; }
.diff del { background: #fcd9d9; color: #7f1d1d; }
.answers-table { width: 100%; border-collapse: collapse; }
.answers-table th, .answers-table td { text-align: left; padding: 6px 10px;
  border-bottom: 1px solid var(--border-color-primary); }
.choice-row button { min-width: 0; }
#shortcuts-toggle { float: right; cursor: pointer; border: 1px solid var(--border-color-primary); border-radius: 6px;
  padding: 2px 10px; background: var(--background-fill-secondary); color: var(--body-text-color); }
#shortcuts-panel { position: fixed; inset: 0; background: rgba(0, 0, 0, 0.35); z-index: 1000;
  display: flex; align-items: center; justify-content: center; }
#shortcuts-panel[hidden] { display: none; }
#shortcuts-panel .shortcuts-card { background: var(--background-fill-primary, #fff); color: var(--body-text-color);
  padding: 18px 24px; border-radius: 10px; max-width: 560px; box-shadow: 0 8px 30px rgba(0, 0, 0, 0.25); }
#shortcuts-panel th { text-align: left; padding: 4px 14px 4px 0; white-space: nowrap; }
#shortcuts-panel kbd { font-family: ui-monospace, monospace; border: 1px solid #bbb; border-radius: 4px;
  padding: 1px 6px; background: #f5f5f5; color: #222; }
"""

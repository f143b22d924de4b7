// Own-IDE code editor: a small CodeMirror 6 setup exposed as window.OwnIde.
// Built by scripts/build-editor.sh into public/editor/ (editor.js + lazily loaded chunks).
//
//   const h = window.OwnIde.mount(parentElement, {doc, language, readOnly, onChange, onRun, label});
//   h.getDoc(); h.setDoc(s); h.setLanguage(id); h.setReadOnly(b); h.focus(); h.destroy();
//
// Keyboard: Tab / Shift-Tab indent (press Escape first, then Tab, to move focus out of the
// editor; Ctrl-M / Shift-Alt-M on macOS toggles that for good), Ctrl/Cmd-Enter runs,
// Ctrl/Cmd-F searches, Ctrl/Cmd-Z / Shift-Z undo and redo.

import { Annotation, Compartment, EditorState, Prec } from '@codemirror/state';
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter,
  highlightSpecialChars, drawSelection, dropCursor,
} from '@codemirror/view';
import {
  defaultKeymap, history, historyKeymap, indentWithTab, isolateHistory,
} from '@codemirror/commands';
import { searchKeymap, highlightSelectionMatches } from '@codemirror/search';
import { closeBrackets, closeBracketsKeymap } from '@codemirror/autocomplete';
import {
  bracketMatching, indentOnInput, indentUnit, syntaxHighlighting, foldGutter, foldKeymap,
  HighlightStyle,
} from '@codemirror/language';
import { tags as t } from '@lezer/highlight';

// ---------------------------------------------------------------- languages (lazy chunks)

const loaders = {
  python: () => import('@codemirror/lang-python').then((m) => m.python()),
  cpp: () => import('@codemirror/lang-cpp').then((m) => m.cpp()),
  java: () => import('@codemirror/lang-java').then((m) => m.java()),
  javascript: () => import('@codemirror/lang-javascript').then((m) => m.javascript()),
};
const aliases = { py: 'python', c: 'cpp', 'c++': 'cpp', js: 'javascript' };
const indentUnits = { python: '    ', cpp: '    ', java: '    ', javascript: '  ' };
const loaded = new Map(); // id -> Promise<LanguageSupport>

function languageId(id) {
  const key = String(id || '').toLowerCase();
  return aliases[key] || key;
}

function loadLanguage(id) {
  if (!loaded.has(id)) {
    const p = loaders[id]();
    p.catch(() => loaded.delete(id)); // allow a retry after a failed chunk load
    loaded.set(id, p);
  }
  return loaded.get(id);
}

// ---------------------------------------------------------------- themes

const mono = 'var(--font-mono, ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace)';

function chrome(dark) {
  const c = dark
    ? { bg: '#0d1117', fg: '#e6edf3', gutterBg: '#0d1117', gutterFg: '#6e7681', active: '#161b22',
        activeGutter: '#161b22', sel: '#264f78', cursor: '#e6edf3', bracket: '#3fb95040',
        match: '#bb800966', border: '#30363d', focus: '#388bfd' }
    : { bg: '#ffffff', fg: '#1f2328', gutterBg: '#f6f8fa', gutterFg: '#8c959f', active: '#f6f8fa',
        activeGutter: '#eaeef2', sel: '#b6d7ff', cursor: '#1f2328', bracket: '#4ac26b40',
        match: '#fae17d80', border: '#d0d7de', focus: '#0969da' };
  const v = (name, fallback) => `var(--editor-${name}, ${fallback})`;
  return EditorView.theme({
    '&': {
      height: '100%',
      fontSize: v('font-size', '14px'),
      color: v('fg', c.fg),
      backgroundColor: v('bg', c.bg),
    },
    // Focus ring drawn by an overlay so the (sticky, stacked) gutter cannot cover it.
    '&.cm-focused': { outline: 'none' },
    '&.cm-focused::after': {
      content: '""', position: 'absolute', inset: '0', pointerEvents: 'none', zIndex: '250',
      border: `2px solid ${v('focus-ring', c.focus)}`,
    },
    '.cm-scroller': { fontFamily: mono, lineHeight: '1.5', overflow: 'auto' },
    '.cm-content': { caretColor: v('cursor', c.cursor) },
    '.cm-cursor, .cm-dropCursor': { borderLeftColor: v('cursor', c.cursor) },
    '.cm-selectionBackground, &.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-content ::selection':
      { backgroundColor: v('selection', c.sel) },
    '.cm-activeLine': { backgroundColor: v('active-line', c.active) },
    '.cm-gutters': {
      backgroundColor: v('gutter-bg', c.gutterBg),
      color: v('gutter-fg', c.gutterFg),
      borderRight: `1px solid ${v('border', c.border)}`,
    },
    '.cm-activeLineGutter': { backgroundColor: v('active-gutter', c.activeGutter), color: v('fg', c.fg) },
    '&.cm-focused .cm-matchingBracket': { backgroundColor: c.bracket, outline: 'none' },
    '.cm-selectionMatch': { backgroundColor: c.match },
    '.cm-searchMatch': { backgroundColor: c.match, outline: `1px solid ${c.border}` },
    '.cm-searchMatch.cm-searchMatch-selected': { backgroundColor: c.bracket },
    '.cm-panels': { backgroundColor: v('gutter-bg', c.gutterBg), color: v('fg', c.fg) },
    '.cm-panels.cm-panels-top': { borderBottom: `1px solid ${v('border', c.border)}` },
    '.cm-panels.cm-panels-bottom': { borderTop: `1px solid ${v('border', c.border)}` },
    '.cm-panel input, .cm-panel button': { fontSize: 'inherit' },
    '.cm-foldPlaceholder': { backgroundColor: 'transparent', border: `1px solid ${c.border}`, color: c.gutterFg },
  }, { dark });
}

function highlight(dark) {
  const p = dark
    ? { kw: '#ff7b72', str: '#a5d6ff', com: '#8b949e', num: '#79c0ff', fn: '#d2a8ff', type: '#ffa657',
        prop: '#79c0ff', re: '#7ee787', bad: '#ffa198', head: '#79c0ff' }
    : { kw: '#cf222e', str: '#0a3069', com: '#6e7781', num: '#0550ae', fn: '#8250df', type: '#953800',
        prop: '#0550ae', re: '#116329', bad: '#82071e', head: '#0550ae' };
  return HighlightStyle.define([
    { tag: [t.keyword, t.controlKeyword, t.operatorKeyword, t.definitionKeyword, t.moduleKeyword,
      t.modifier, t.self, t.processingInstruction, t.meta], color: p.kw },
    { tag: [t.string, t.special(t.string), t.character, t.docString], color: p.str },
    { tag: [t.regexp, t.escape], color: p.re },
    { tag: [t.comment, t.lineComment, t.blockComment, t.docComment], color: p.com, fontStyle: 'italic' },
    { tag: [t.number, t.integer, t.float, t.bool, t.null, t.atom, t.unit, t.constant(t.variableName),
      t.standard(t.variableName)], color: p.num },
    { tag: [t.function(t.variableName), t.function(t.propertyName), t.definition(t.function(t.variableName)),
      t.macroName], color: p.fn },
    { tag: [t.typeName, t.className, t.namespace, t.definition(t.typeName), t.annotation], color: p.type },
    { tag: [t.propertyName, t.attributeName, t.labelName], color: p.prop },
    { tag: t.heading, color: p.head, fontWeight: 'bold' },
    { tag: t.strong, fontWeight: 'bold' },
    { tag: t.emphasis, fontStyle: 'italic' },
    { tag: t.link, textDecoration: 'underline' },
    { tag: t.invalid, color: p.bad },
  ]);
}

const themes = {};
function themeFor(dark) {
  const key = dark ? 'dark' : 'light';
  return (themes[key] ||= [chrome(dark), syntaxHighlighting(highlight(dark))]);
}

const darkQuery = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : null;

// ---------------------------------------------------------------- mount

const external = Annotation.define(); // marks setDoc transactions (no onChange for them)

function mount(parent, opts = {}) {
  if (!(parent instanceof HTMLElement)) throw new TypeError('OwnIde.mount: parent must be an HTMLElement');
  const language = new Compartment();
  const readOnly = new Compartment();
  const theme = new Compartment();
  let langRequest = 0;
  let destroyed = false;
  let currentLanguage = null;

  const readOnlyExt = (b) => [EditorState.readOnly.of(!!b), EditorView.contentAttributes.of({ 'aria-readonly': String(!!b) })];
  const runKeys = Prec.highest(keymap.of(['Mod-Enter', 'Ctrl-Enter', 'Meta-Enter'].map((key) => ({
    key,
    preventDefault: true,
    run: () => { if (typeof opts.onRun === 'function') opts.onRun(); return true; },
  }))));

  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: opts.doc == null ? '' : String(opts.doc),
      extensions: [
        runKeys,
        lineNumbers(),
        foldGutter(),
        highlightActiveLineGutter(),
        highlightSpecialChars(),
        history(),
        drawSelection(),
        dropCursor(),
        EditorState.allowMultipleSelections.of(true),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        keymap.of([
          ...closeBracketsKeymap,
          ...defaultKeymap,
          ...searchKeymap,
          ...historyKeymap,
          ...foldKeymap,
          indentWithTab,
        ]),
        EditorView.contentAttributes.of({ 'aria-label': opts.label || 'Code editor' }),
        language.of([]),
        readOnly.of(readOnlyExt(opts.readOnly)),
        theme.of(themeFor(!!(darkQuery && darkQuery.matches))),
        EditorView.updateListener.of((u) => {
          if (!u.docChanged || typeof opts.onChange !== 'function') return;
          if (u.transactions.some((tr) => tr.annotation(external))) return;
          opts.onChange(u.state.doc.toString());
        }),
      ],
    }),
  });

  const onScheme = (e) => { if (!destroyed) view.dispatch({ effects: theme.reconfigure(themeFor(e.matches)) }); };
  if (darkQuery) darkQuery.addEventListener('change', onScheme);

  function setLanguage(id) {
    if (destroyed) return Promise.resolve();
    const lang = languageId(id);
    const req = ++langRequest;
    if (!loaders[lang]) {
      console.warn(`OwnIde: unknown language '${id}', using plain text`);
      currentLanguage = null;
      view.dispatch({ effects: language.reconfigure([]) });
      return Promise.resolve();
    }
    return loadLanguage(lang).then((support) => {
      if (destroyed || req !== langRequest) return; // a newer setLanguage won
      currentLanguage = lang;
      view.dispatch({ effects: language.reconfigure([support, indentUnit.of(indentUnits[lang])]) });
    }, (err) => console.error(`OwnIde: could not load language '${lang}'`, err));
  }

  setLanguage(opts.language);

  return {
    getDoc: () => view.state.doc.toString(),
    // Replaces the whole document as one undoable step (does not call onChange).
    setDoc(s) {
      if (destroyed) return;
      const doc = s == null ? '' : String(s);
      const state = view.state;
      if (doc === state.doc.toString()) return;
      const head = Math.min(state.selection.main.head, doc.length);
      view.dispatch({
        changes: { from: 0, to: state.doc.length, insert: doc },
        selection: { anchor: head },
        annotations: [external.of(true), isolateHistory.of('full')],
        scrollIntoView: true,
      });
    },
    setLanguage,
    getLanguage: () => currentLanguage,
    setReadOnly(b) { if (!destroyed) view.dispatch({ effects: readOnly.reconfigure(readOnlyExt(b)) }); },
    focus() { if (!destroyed) view.focus(); },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      if (darkQuery) darkQuery.removeEventListener('change', onScheme);
      view.destroy();
    },
  };
}

window.OwnIde = { mount, languages: Object.keys(loaders) };
window.dispatchEvent(new Event('ownide-editor-ready'));

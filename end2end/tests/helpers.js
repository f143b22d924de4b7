// Shared steps for the browser tests.
const base = require('@playwright/test');
const { expect } = base;
const crypto = require('crypto');

// Every test is a new guest: a fresh browser context (no cookies) and its own client
// address. The app under test trusts 127.0.0.1 as a proxy (scripts/test.sh), so the
// X-Forwarded-For set here is the address the guest quota counts.
function freshIp() {
  const b = crypto.randomBytes(3);
  return `10.${b[0]}.${b[1]}.${(b[2] % 250) + 1}`;
}

const test = base.test.extend({
  context: async ({ browser, javaScriptEnabled }, use) => {
    const context = await browser.newContext({
      javaScriptEnabled,
      // No colour transitions: a screenshot right after a state change shows the new state.
      reducedMotion: 'reduce',
      extraHTTPHeaders: { 'X-Forwarded-For': freshIp() },
    });
    await use(context);
    await context.close();
  },
  page: async ({ context }, use) => {
    const page = await context.newPage();
    await use(page);
  },
});

// Opens the editor and waits until the page has hydrated and CodeMirror is mounted.
async function openEditor(page, path = '/') {
  await page.goto(path);
  await expect(page.locator('.cm-host.mounted .cm-content')).toBeVisible();
}

// Replaces the editor's text (select all, then type is slow: paste through the editor).
async function setCode(page, code) {
  const content = page.locator('.cm-content');
  await content.click();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(code);
}

// Waits for hydration (the app marks <body data-hydrated> once it is interactive).
async function hydrated(page) {
  await expect(page.locator('body[data-hydrated=true]')).toBeAttached();
}

// A username no other test uses.
function freshName(prefix) {
  return `${prefix}_${crypto.randomBytes(5).toString('hex')}`;
}

// Registers through the page (works with and without JavaScript); ends on the editor.
async function register(page, username, { js = true, password = 'correct horse battery' } = {}) {
  await page.goto('/register');
  if (js) await hydrated(page);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.fill('#confirm', password);
  await page.click('form button[type=submit]');
  await expect(page.locator('.site-header .user')).toContainText(username);
}

module.exports = { test, expect, openEditor, setCode, freshName, register, hydrated };

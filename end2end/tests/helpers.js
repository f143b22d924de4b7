// Shared steps for the browser tests.
const { expect } = require('@playwright/test');

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

module.exports = { openEditor, setCode };

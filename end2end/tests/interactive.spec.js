// Talking to a running program from the editor: the prompt shows before anything is typed,
// Enter sends a line (echoed in the output), Ctrl+D ends the input, and the line is
// disabled once the program has ended.
const { test, expect, openEditor, setCode } = require('./helpers');

const PROGRAM = [
  'import sys',
  'name = input("name? ")',
  'print(f"Hello, {name}!")',
  'rest = sys.stdin.read()',
  'print(f"then {len(rest.split())} words")',
  '',
].join('\n');

test('an interactive Python program is answered through the input line', async ({ page }) => {
  await openEditor(page);
  await setCode(page, PROGRAM);
  await expect(page.locator('#stdin')).toHaveValue('');
  // Off by default; switched on, it is kept with the draft.
  const toggle = page.locator('button.interactive-toggle');
  await expect(toggle).toHaveAttribute('aria-pressed', 'false');
  await toggle.click();
  await expect(toggle).toHaveAttribute('aria-pressed', 'true');
  await page.click('button.run');

  // The prompt is there while nothing has been typed, and the line has the focus.
  const stdout = page.locator('pre.stdout');
  await expect(stdout).toHaveText('name? ', { timeout: 30_000 });
  const line = page.locator('input.stdin-line');
  await expect(line).toBeEnabled();
  await expect(line).toBeFocused();

  await line.type('Ada');
  await line.press('Enter');
  // The answer is echoed where it was typed, then the program's reply follows.
  await expect(stdout).toHaveText('name? Ada\nHello, Ada!\n');
  await expect(stdout.locator('.typed')).toHaveText('Ada\n');
  await expect(line).toHaveValue('');
  await expect(page.locator('.status-line')).toContainText('Running…');

  await line.type('one two');
  await line.press('Enter');
  await line.type('three');
  await line.press('Control+d');
  await expect(page.locator('.status-line [data-verdict=ok]')).toHaveText('OK', { timeout: 30_000 });
  await expect(stdout).toHaveText('name? Ada\nHello, Ada!\none two\nthreethen 3 words\n');
  await expect(line).toBeDisabled();
});

test('a run with input given up front shows no input line', async ({ page }) => {
  await openEditor(page);
  await setCode(page, 'print(input() * 2)\n');
  await page.fill('#stdin', 'ab');
  await page.click('button.run');
  await expect(page.locator('pre.stdout')).toHaveText('abab\n', { timeout: 30_000 });
  await expect(page.locator('input.stdin-line')).toBeHidden();
});

test('the interactive toggle is kept with the draft', async ({ page }) => {
  await openEditor(page);
  await page.click('button.interactive-toggle');
  await expect(page.locator('button.interactive-toggle')).toHaveAttribute('aria-pressed', 'true');
  await page.reload();
  await expect(page.locator('.cm-host.mounted .cm-content')).toBeVisible();
  await expect(page.locator('button.interactive-toggle')).toHaveAttribute('aria-pressed', 'true');
});

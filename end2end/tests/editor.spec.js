// The editor as a user meets it: four languages with stdin, compile errors, time limits,
// stop, live output, drafts that survive a reload, Ctrl+Enter, and no JavaScript at all.
const { test, expect, openEditor, setCode } = require('./helpers');

const PROGRAMS = {
  python: 'name = input()\nprint(f"Hello, {name}!")\n',
  cpp: '#include <iostream>\n#include <string>\nint main() {\nstd::string s;\nstd::getline(std::cin, s);\nstd::cout << "Hello, " << s << "!" << std::endl;\nreturn 0;\n}\n',
  java: 'import java.util.Scanner;\npublic class Main {\npublic static void main(String[] args) {\nScanner sc = new Scanner(System.in);\nSystem.out.println("Hello, " + sc.nextLine() + "!");\n}\n}\n',
  javascript: "const name = require('fs').readFileSync(0, 'utf8').trim();\nconsole.log(`Hello, ${name}!`);\n",
};

for (const [language, code] of Object.entries(PROGRAMS)) {
  test(`${language}: reads stdin and prints the exact output with OK`, async ({ page }) => {
    await openEditor(page);
    await page.selectOption('#language', language);
    await setCode(page, code);
    await page.fill('#stdin', `Grace ${language}`);
    await page.click('button.run');
    await expect(page.locator('pre.stdout')).toHaveText(`Hello, Grace ${language}!\n`, { timeout: 30_000 });
    await expect(page.locator('.status-line [data-verdict=ok]')).toHaveText('OK');
  });
}

// A first visit: every language's template, run as it is, answers at once (it reads a
// name from stdin, and a run that is not interactive sees the input end straight away).
for (const language of ['python', 'cpp', 'java', 'javascript', 'c', 'rust', 'go', 'typescript']) {
  test(`${language}: Run on the template shows its output without waiting for input`, async ({ page }) => {
    await openEditor(page, `/?lang=${language}`);
    await expect(page.locator('button.interactive-toggle')).toHaveAttribute('aria-pressed', 'false');
    await page.click('button.run');
    await expect(page.locator('.status-line [data-verdict=ok]')).toHaveText('OK', { timeout: 30_000 });
    await expect(page.locator('pre.stdout')).toHaveText('Hello, world!\n');
    await expect(page.locator('input.stdin-line')).toBeHidden();
  });
}

test('a C++ compile error shows the compiler message and its verdict', async ({ page }) => {
  await openEditor(page, '/?lang=cpp');
  await setCode(page, 'int main() {\nreturn undefined_name;\n}\n');
  await page.click('button.run');
  await expect(page.locator('.status-line [data-verdict=compile_error]')).toHaveText('Compile error', { timeout: 30_000 });
  await expect(page.locator('.output')).toContainText('undefined_name');
  await expect(page.locator('.output')).toContainText('was not declared in this scope');
});

test('an endless loop ends with Time limit', async ({ page }) => {
  await openEditor(page);
  await setCode(page, 'while True:\n    pass\n');
  await page.click('button.run');
  await expect(page.locator('.status-line [data-verdict=time_limit]')).toHaveText('Time limit', { timeout: 30_000 });
});

test('output appears while the program still runs, and Stop ends it', async ({ page }) => {
  await openEditor(page);
  await setCode(page, "import time\nprint('before the nap', flush=True)\ntime.sleep(30)\nprint('after the nap')\n");
  await page.click('button.run');
  await expect(page.locator('pre.stdout')).toHaveText('before the nap\n', { timeout: 15_000 });
  // Still running: the Stop button is live and the second line has not come.
  await expect(page.locator('button.stop')).toBeEnabled();
  await expect(page.locator('.status-line [data-verdict]')).toHaveCount(0);
  // The status line says it is running, with a clock that goes on.
  await expect(page.locator('.status-line')).toContainText('Running…');
  const elapsed = page.locator('.status-line [data-testid=elapsed]');
  await expect(elapsed).toHaveText(/^\d+\.\d s$/);
  const first = parseFloat(await elapsed.textContent());
  await expect.poll(async () => parseFloat(await elapsed.textContent())).toBeGreaterThan(first);
  await page.click('button.stop');
  // Stopped, not ended by the time limit: how fast belongs in bench/, not here.
  await expect(page.locator('.status-line [data-verdict=stopped]')).toHaveText('Stopped', { timeout: 30_000 });
  await expect(page.locator('pre.stdout')).not.toContainText('after the nap');
});

test('the input pane folds away and comes back with its text', async ({ page }) => {
  await openEditor(page);
  await page.fill('#stdin', 'kept while folded');
  const toggle = page.locator('button.pane-toggle[aria-controls=stdin]');
  await expect(toggle).toHaveAttribute('aria-expanded', 'true');
  await toggle.click();
  await expect(page.locator('#stdin')).toBeHidden();
  await expect(toggle).toHaveAttribute('aria-expanded', 'false');
  await expect(toggle).toHaveAccessibleName('Show the input');
  await toggle.click();
  await expect(page.locator('#stdin')).toBeVisible();
  await expect(page.locator('#stdin')).toHaveValue('kept while folded');
});

test('a reload keeps the draft, and Ctrl+Enter runs it', async ({ page }) => {
  await openEditor(page);
  await setCode(page, "print('kept across reloads')\n");
  await page.reload();
  await expect(page.locator('.cm-host.mounted .cm-content')).toContainText("print('kept across reloads')");
  await page.locator('.cm-content').click();
  await page.keyboard.press('Control+Enter');
  await expect(page.locator('pre.stdout')).toHaveText('kept across reloads\n', { timeout: 15_000 });
  await expect(page.locator('.status-line [data-verdict=ok]')).toBeVisible();
  await page.screenshot({ path: 'screenshots/editor-after-run-light.png' });
  await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
  await page.screenshot({ path: 'screenshots/editor-after-run-dark.png' });
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the form runs Python and the result page shows the output', async ({ page }) => {
    await page.goto('/');
    // Controls that need JavaScript are not offered.
    await expect(page.locator('button.pane-toggle')).toBeHidden();
    await page.fill('textarea#code', 'print(input() * 2)\n');
    await page.fill('#stdin', 'ab');
    await page.click('button.run');
    await expect(page).toHaveURL(/\/runs\/[0-9a-f]{32}$/);
    await expect(page.locator('pre.stdout')).toHaveText('abab\n');
    await expect(page.locator('[data-verdict=ok]')).toHaveText('OK');
  });
});

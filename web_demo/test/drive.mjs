// Drives the web demo in headless Chromium (Debian's /usr/bin/chromium, through
// playwright-core: no browser download) by a plan of steps, and writes what it saw.
//
//   node web_demo/test/drive.mjs PLAN.json RESULT.json
//
// PLAN: {"url": ..., "executable": "/usr/bin/chromium", "steps": [...]}; each step is one of
//   {"do": "goto", "url": URL, "permissions": ["camera"]?}  new page; only these permissions
//   {"do": "select", "selector": S, "value": V}               choose an <option>
//   {"do": "files", "selector": S, "paths": [P, ...]}         set a file input
//   {"do": "click" | "check" | "uncheck", "selector": S}
//   {"do": "wait", "states": ["done", "error"], "timeout_ms": N}  body[data-state]
//   {"do": "eval", "expr": JS, "save": KEY}                   result saved under KEY
//   {"do": "expect", "expr": JS, "message": M}                stop the plan with M unless JS is true
//   {"do": "text", "selector": S, "save": KEY}                textContent
//   {"do": "screenshot", "path": P}
//   {"do": "download", "selector": S, "path": P}              click, save the download
//   {"do": "sleep", "ms": N}
//   {"do": "phase", "name": NAME}                              console lines from here on are tagged NAME
// Every step that changes the page first marks body[data-state] "pending", so a following
// "wait" sees the new outcome, not an old one. Console errors and warnings are saved too, as
// {phase, type, text} (phase "normal" until a "phase" step), and page errors.
//
// Every http(s) request of the browser context (pages and their workers) is seen: its origin
// goes to `origins`, and one to any host but 127.0.0.1 / localhost is aborted before it leaves
// the machine and recorded in `outside` as {phase, url} (a test fails on either).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

const [planPath, outPath] = process.argv.slice(2);
const plan = JSON.parse(fs.readFileSync(planPath, 'utf8'));
const result = { saved: {}, console: [], pageErrors: [], origins: [], outside: [], steps: 0 };
let phase = 'normal';
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgematting-chromium-'));

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage', '--use-fake-device-for-media-stream',
];

let context = null;
let page = null;

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

function isHttp(u) {
  return u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'ws:' || u.protocol === 'wss:';
}

function noteRequest(r) {
  const u = new URL(r.url());
  if (isHttp(u) && !result.origins.includes(u.origin)) result.origins.push(u.origin);
}

async function markPending() {
  await page.evaluate(() => { document.body.dataset.state = 'pending'; });
}

async function run(step) {
  switch (step.do) {
    case 'goto': {
      if (page) await page.close();
      await context.clearPermissions();
      if (step.permissions?.length) await context.grantPermissions(step.permissions, { origin: new URL(step.url).origin });
      page = await context.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') result.console.push({ phase, type: m.type(), text: m.text() });
      });
      page.on('pageerror', (e) => result.pageErrors.push(`[${phase}] ${e}`));
      page.on('request', noteRequest);
      await page.goto(step.url, { waitUntil: 'load' });
      return;
    }
    case 'select':
      await markPending();
      await page.selectOption(step.selector, step.value);
      return;
    case 'files':
      await markPending();
      await page.setInputFiles(step.selector, step.paths);
      return;
    case 'click':
      await markPending();
      await page.click(step.selector);
      return;
    case 'check':
      await markPending();
      await page.check(step.selector);
      return;
    case 'uncheck':
      await markPending();
      await page.uncheck(step.selector);
      return;
    case 'wait':
      await page.waitForFunction((states) => states.includes(document.body.dataset.state), step.states,
        { timeout: step.timeout_ms ?? 30000, polling: 50 });
      return;
    case 'eval':
      result.saved[step.save] = await page.evaluate(step.expr);
      return;
    case 'expect':
      if ((await page.evaluate(step.expr)) !== true) throw new Error(step.message);
      return;
    case 'text':
      result.saved[step.save] = (await page.textContent(step.selector)) ?? '';
      return;
    case 'screenshot':
      await page.screenshot({ path: step.path, fullPage: true });
      return;
    case 'download': {
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click(step.selector)]);
      await dl.saveAs(step.path);
      result.saved[step.save ?? 'download'] = dl.suggestedFilename();
      return;
    }
    case 'sleep':
      await new Promise((r) => setTimeout(r, step.ms));
      return;
    case 'phase':
      phase = step.name;
      return;
    default:
      throw new Error(`unknown step ${JSON.stringify(step)}`);
  }
}

// A persistent context on a fresh profile folder: Playwright's way of passing --user-data-dir.
context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: plan.executable ?? '/usr/bin/chromium',
  headless: true,
  args: ARGS,
  viewport: { width: 1100, height: 900 },
  acceptDownloads: true,
  timeout: 60000,
});
context.on('request', noteRequest); // workers' requests too
// nothing leaves the machine: a request to another host is recorded and aborted
await context.route((u) => isHttp(u) && !LOCAL_HOSTS.has(u.hostname), (route) => {
  result.outside.push({ phase, url: route.request().url() });
  return route.abort('blockedbyclient');
});
let code = 0;
try {
  for (const step of plan.steps) {
    try {
      await run(step);
      result.steps++;
    } catch (e) {
      result.error = `step ${result.steps} ${JSON.stringify(step).slice(0, 200)}: ${e.message}`;
      if (page) {
        result.state = await page.evaluate(() => document.body.dataset.state).catch(() => null);
        result.message = await page.textContent('#message').catch(() => null);
      }
      code = 1;
      break;
    }
  }
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
  fs.writeFileSync(outPath, JSON.stringify(result));
}
process.exit(code);

/**
 * The fleet page's files: plain HTML, CSS and an ES module in
 * src/http/public/ (copied next to the compiled server by `npm run build`).
 * No front-end build step: the page is one small module that talks to the
 * JSON API, so a bundler would add a tool chain for nothing. A fixed list of
 * files, read once, with a strict Content-Security-Policy (no inline script,
 * nothing from other origins).
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';

const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/chart.js': { file: 'chart.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const cache = new Map<string, Buffer>();

/** Answer a GET for one of the page's files; false when `path` is not one. */
export async function servePage(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
  const entry = FILES[path];
  if (entry === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
  let body = cache.get(entry.file);
  if (body === undefined) {
    body = await readFile(new URL(`./public/${entry.file}`, import.meta.url));
    cache.set(entry.file, body);
  }
  res.writeHead(200, {
    'content-type': entry.type,
    'content-length': body.length,
    'cache-control': 'no-cache',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}

// A stand-in for the Hugging Face Hub on 127.0.0.1: serves model folders under the Hub's URL layout
//   GET /<owner>/<name>/resolve/<revision>/<file>
// and can be told to misbehave per file: answer 404, drop the connection part-way (a truncated
// download), or serve a cut-down file with an honest Content-Length (a truncated file on the server).
// Like the real Hub, large files can be answered with a 302 to a "CDN" path on the same server.
// Every request is logged so tests can assert what was (not) downloaded. Responses carry CORS headers
// so a page on another origin (the Playwright tests) can use it as its Hub.
//
// Standalone: tsx tests/helpers/hub-server.ts --port 5180 mend/tiny=tests/fixtures/tiny-gpt2 [...]

import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface HubRules {
  /** "owner/name" → local folder served for every revision */
  repos: Record<string, string>;
  /** "owner/name/file" → replacement content (wins over the folder) */
  overrides: Record<string, Uint8Array | string>;
  /** "owner/name/file" answered 404 even if the file exists */
  notFound: Set<string>;
  /** "owner/name/file" → send the full Content-Length but only `bytes` bytes, then drop the connection */
  dropAfter: Record<string, number>;
  /** "owner/name/file" → serve only the first `bytes` bytes, with a matching Content-Length */
  cutTo: Record<string, number>;
  /** answer *.safetensors with a 302 to /cdn/... (as the Hub does for LFS files) */
  lfsRedirect: boolean;
}

export interface HubServer {
  /** base URL to use as hubUrl, e.g. http://127.0.0.1:41234 */
  url: string;
  /** paths requested so far (including redirected /cdn/ requests) */
  requests: string[];
  /** mutable: change between tests */
  rules: HubRules;
  close(): Promise<void>;
}

const RESOLVE = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/([^/]+)$/;
const CDN = /^\/cdn\/([^/]+)\/([^/]+)\/([^/]+)$/;

export async function startHubServer(repos: Record<string, string>, port = 0): Promise<HubServer> {
  const rules: HubRules = { repos, overrides: {}, notFound: new Set(), dropAfter: {}, cutTo: {}, lfsRedirect: false };
  const requests: string[] = [];

  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent((req.url ?? '').split('?')[0]);
    requests.push(path);
    // The Hub allows cross-origin reads; Content-Length must be readable for download progress.
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-expose-headers', 'content-length');
    const resolve = RESOLVE.exec(path);
    const cdn = CDN.exec(path);
    const m = resolve ? [resolve[1], resolve[2], resolve[4]] : cdn ? [cdn[1], cdn[2], cdn[3]] : null;
    if (!m || req.method !== 'GET') {
      res.writeHead(404).end('Not Found');
      return;
    }
    const [owner, name, file] = m;
    const repo = `${owner}/${name}`;
    const key = `${repo}/${file}`;
    const folder = rules.repos[repo];
    if (!folder || rules.notFound.has(key)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Entry not found');
      return;
    }
    if (resolve && rules.lfsRedirect && file.endsWith('.safetensors')) {
      res.writeHead(302, { location: `/cdn/${owner}/${name}/${file}` }).end();
      return;
    }
    let body: Uint8Array;
    const override = rules.overrides[key];
    if (override !== undefined) {
      body = typeof override === 'string' ? new TextEncoder().encode(override) : override;
    } else {
      try {
        body = await readFile(join(folder, file));
      } catch {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('Entry not found');
        return;
      }
    }
    if (key in rules.cutTo) body = body.subarray(0, rules.cutTo[key]);
    const type = file.endsWith('.json') ? 'application/json' : 'application/octet-stream';
    res.writeHead(200, { 'content-type': type, 'content-length': String(body.byteLength) });
    if (key in rules.dropAfter) {
      res.write(body.subarray(0, rules.dropAfter[key]), () => res.destroy());
      return;
    }
    res.end(body);
  });

  await new Promise<void>((ok) => server.listen(port, '127.0.0.1', ok));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    requests,
    rules,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolvePath(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const portAt = args.indexOf('--port');
  const port = portAt >= 0 ? Number(args.splice(portAt, 2)[1]) : 0;
  const repos = Object.fromEntries(args.map((a) => a.split('=') as [string, string]));
  const hub = await startHubServer(repos, port);
  process.stdout.write(`hub server on ${hub.url} serving ${Object.keys(repos).join(', ')}\n`);
}

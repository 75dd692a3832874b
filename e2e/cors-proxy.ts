// A pass-through proxy that adds the CORS header the real Hugging Face Hub sends
// (Access-Control-Allow-Origin: *). The page and the Hub stand-in (tests/helpers/hub-server.ts) are on
// different ports, i.e. different origins, so without it the browser would refuse every Hub response.
// It can also slow a file down so the test can watch the progress bar move.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CorsProxy {
  url: string;
  /** Path suffix → stream that file in 16 KiB pieces with this many ms between them. */
  slow: Record<string, number>;
  close(): Promise<void>;
}

export async function startCorsProxy(target: string): Promise<CorsProxy> {
  const slow: Record<string, number> = {};
  const server: Server = createServer((req, res) => {
    const upstream = request(new URL(req.url ?? '/', target), { method: req.method, headers: { ...req.headers, host: new URL(target).host } }, (up) => {
      const headers = { ...up.headers, 'access-control-allow-origin': '*' };
      res.writeHead(up.statusCode ?? 502, headers);
      const delay = Object.entries(slow).find(([suffix]) => (req.url ?? '').endsWith(suffix))?.[1];
      if (!delay) {
        up.pipe(res);
        up.on('error', () => res.destroy());
        up.on('aborted', () => res.destroy());
        return;
      }
      const chunks: Buffer[] = [];
      up.on('data', (c: Buffer) => chunks.push(c));
      up.on('end', async () => {
        const body = Buffer.concat(chunks);
        for (let i = 0; i < body.length; i += 16384) {
          res.write(body.subarray(i, i + 16384));
          await new Promise((r) => setTimeout(r, delay));
        }
        res.end();
      });
    });
    upstream.on('error', () => res.headersSent ? res.destroy() : res.writeHead(502).end('proxy error'));
    req.pipe(upstream);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    slow,
    close: () => new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}

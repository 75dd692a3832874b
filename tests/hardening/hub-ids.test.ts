// Hugging Face model ids come from users (a form, a share link, --model). Only `owner/name` is accepted, so a
// crafted id can neither leave the Hub's /<owner>/<name>/resolve/<revision>/ layout (path traversal), nor name
// another host, nor smuggle either past the check URL-encoded. Every bad id is tried raw and URL-decoded.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HUB_URL, fileUrl, hubSource, isHubId, ModelFileError, parseHubSpec } from '../../src/model';
import { resolveModelSource } from '../../src/cli/model-source';
import { UsageError } from '../../src/cli/errors';

const BAD_IDS = [
  // not owner/name
  '', 'gpt2', 'a', 'a/', '/a', 'a/b/c', 'a//b', '/a/b', 'a/b/', 'owner/name/resolve/main',
  // path traversal
  '..', '../a', 'a/..', '../../etc/passwd', 'a/../b', './a', 'a/.', '.a/b', 'a/.b', 'a..b/c', 'a/b..c', 'a/b.', '-a/b', 'a/b-',
  // other hosts and schemes
  'https://evil.example/a/b', 'http://huggingface.co/a/b', '//evil.example/a', 'evil.example/a/b', 'huggingface.co/a/b',
  'user:pass@evil.example/a', 'a@evil.example/b', 'file:///etc/passwd', 'javascript:alert(1)', 'data:text/html,x/y',
  // URL-encoded tricks
  '%2e%2e/a', 'a/%2e%2e', '%2E%2E%2Fa/b', 'a%2Fb/c', 'a/b%2F..%2Fc', '%2F%2Fevil.example/a', '..%2F..%2Fetc/passwd',
  'a/b%00', 'a%252e%252e/b', 'a/b%23', 'a/b%3Fx=1',
  // characters a URL would interpret, and look-alikes
  'a/b?x=1', 'a/b#frag', 'a/b;c', 'a\\b/c', 'a/b\\..\\c', 'a/b c', 'a /b', ' a/b', 'a/b ', 'a/b\n', 'a/b\t', 'a/b\u0000',
  'а/b' /* Cyrillic а */, 'a／b' /* full-width solidus */, 'a∕b' /* division slash */, 'a/b\u200b', 'ａ/b',
  // too long for the Hub (96 characters per part)
  `${'a'.repeat(97)}/b`, `a/${'b'.repeat(97)}`,
];
const BAD_REVISIONS = ['', '..', '../main', 'main/..', 'main/../../x', './main', 'main%2F..', 'a b', 'main?x', 'main#x', '/main', 'main/', 'a//b'];
const GOOD_IDS = ['openai-community/gpt2', 'distilbert/distilgpt2', 'a/b', 'user_1/model.v2', 'A-b/c_d', 'x1/gpt2-medium'];

describe('Hugging Face model ids', () => {
  it(`refuses ${BAD_IDS.length} bad ids, raw and URL-decoded, in every entry point`, () => {
    let tried = 0;
    for (const raw of BAD_IDS) {
      let decoded = raw;
      try {
        decoded = decodeURIComponent(raw);
      } catch {
        /* not decodable: the raw form is the only one */
      }
      for (const id of new Set([raw, decoded])) {
        tried++;
        expect(isHubId(id), JSON.stringify(id)).toBe(false);
        expect(() => hubSource(id), JSON.stringify(id)).toThrow(ModelFileError);
        expect(() => hubSource(id), JSON.stringify(id)).toThrow(/not a valid Hugging Face model id \(expected "owner\/name"/);
        expect(() => parseHubSpec(id), JSON.stringify(id)).toThrow(ModelFileError);
        expect(() => parseHubSpec(`${id}@main`), JSON.stringify(id)).toThrow(ModelFileError);
        // the CLI takes local folders too; an id that happens to be an existing path here is a folder, not an id
        if (!existsSync(id) && !existsSync(id.split('@')[0])) {
          expect(() => resolveModelSource(id), JSON.stringify(id)).toThrow(UsageError);
        }
      }
    }
    console.log(`hub ids refused: ${BAD_IDS.length} ids (${tried} raw and URL-decoded forms), ${BAD_REVISIONS.length} revisions`);
  });

  it(`refuses ${BAD_REVISIONS.length} bad revisions`, () => {
    for (const rev of BAD_REVISIONS) {
      expect(() => hubSource('a/b', rev), JSON.stringify(rev)).toThrow(/invalid revision/);
      expect(() => parseHubSpec(`a/b@${rev}`), JSON.stringify(rev)).toThrow(ModelFileError);
    }
  });

  it('builds URLs for good ids that stay on the Hub host under /<owner>/<name>/resolve/', () => {
    for (const id of GOOD_IDS) {
      expect(isHubId(id)).toBe(true);
      for (const rev of ['main', 'refs/pr/1', 'v1.0', '0123abcd']) {
        const url = new URL(fileUrl(parseHubSpec(`${id}@${rev}`), 'config.json')!);
        expect(url.origin).toBe(DEFAULT_HUB_URL);
        expect(url.pathname).toBe(`/${id}/resolve/${rev.replace(/\//g, '%2F')}/config.json`);
        expect(url.search + url.hash).toBe('');
      }
    }
  });

  it('refuses file names that are not plain names', () => {
    const src = hubSource('a/b');
    for (const f of ['../config.json', 'a/b.json', '/etc/passwd', '%2e%2e', 'x?y', 'x#y', '', '..', 'http://evil.example/x']) {
      expect(() => fileUrl(src, f), f).toThrow(/not a plain file name/);
    }
  });
});

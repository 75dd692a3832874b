// One bar for the whole download and one per file, with where each file came from.
import type { FileProgress } from '../worker/protocol';
import { formatBytes } from './format';

export function DownloadProgress({ files, stopped }: { files: FileProgress[]; stopped: boolean }) {
  const loaded = files.reduce((a, f) => a + f.loaded, 0);
  const sizesKnown = files.every((f) => f.total > 0 || f.done);
  const total = files.reduce((a, f) => a + (f.total > 0 ? f.total : f.loaded), 0);
  const allDone = files.every((f) => f.done);
  const allCached = allDone && files.every((f) => f.fromCache);
  const verb = allCached ? 'Read from the browser cache' : allDone ? 'Downloaded' : stopped ? 'Stopped' : 'Downloading';
  return (
    <div className="downloads" data-testid="download-progress">
      <div className="progress-line">
        <label htmlFor="download-total">{verb}: {formatBytes(loaded)}{sizesKnown ? ` of ${formatBytes(total)}` : ''}</label>
        <progress
          id="download-total"
          data-testid="download-total"
          max={sizesKnown && total > 0 ? total : 1}
          value={sizesKnown && total > 0 ? loaded : stopped ? 0 : undefined}
        />
      </div>
      <ul className="file-list" aria-label="Files">
        {files.map((f) => (
          <li key={f.file} data-testid="file-progress" data-file={f.file} data-from-cache={String(f.fromCache)} data-done={String(f.done)}>
            <span className="file-name">{f.file}</span>
            <progress
              max={f.total > 0 ? f.total : 1}
              value={f.total > 0 ? f.loaded : f.done ? 1 : stopped ? 0 : undefined}
              aria-label={`${f.file} progress`}
            />
            <span className="file-size">
              {f.fromCache ? 'cached' : f.total > 0 ? `${formatBytes(f.loaded)} / ${formatBytes(f.total)}` : formatBytes(f.loaded)}
            </span>
          </li>
        ))}
      </ul>
    </div>
  );
}

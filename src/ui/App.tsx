// The first page: pick a model, type a prompt, read the completion and the next-token distribution.
import { useEffect } from 'react';
import { useApp } from '../store/app-store';
import { BackendBadge, BackendControls } from './BackendBadge';
import { ModelPicker } from './ModelPicker';
import { PromptPanel } from './PromptPanel';
import { TopKChart } from './TopKChart';

export function App() {
  const start = useApp((s) => s.start);
  useEffect(() => {
    void start();
  }, [start]);

  return (
    <>
      <header className="app-header">
        <h1>MEND Lab</h1>
        <p className="tagline">A small GPT running in your browser</p>
        <div className="backend">
          <span className="muted">Backend</span> <BackendBadge />
        </div>
      </header>
      <main className="layout">
        <div className="column">
          <ModelPicker />
          <BackendControls />
        </div>
        <div className="column">
          <PromptPanel />
          <TopKChart />
        </div>
      </main>
    </>
  );
}

// The page: pick a model, type a prompt, read the completion and the next-token distribution; then edit a fact and
// see, side by side, what changed and what did not (the playground below).
import { useEffect } from 'react';
import { useApp } from '../store/app-store';
import { BackendBadge, BackendControls } from './BackendBadge';
import { Playground } from './edit/Playground';
import { ModelPicker } from './ModelPicker';
import { PromptPanel } from './PromptPanel';
import { SystemNotice } from './SystemNotice';
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
        <p className="tagline">Edit a fact in a small GPT, in your browser, and see what changed</p>
        <div className="backend">
          <span className="muted">Backend</span> <BackendBadge />
        </div>
      </header>
      <SystemNotice />
      {/* one main landmark for the whole working area (model, prompt, and the editing playground) */}
      <main>
        <div className="layout">
          <div className="column">
            <ModelPicker />
            <BackendControls />
          </div>
          <div className="column">
            <PromptPanel />
            <TopKChart />
          </div>
        </div>
        <Playground />
      </main>
    </>
  );
}

// The editing playground: form and history on the left, results on the right. Below the results there is a slot for
// the weights panel and the guided lesson (src/ui/weights, src/ui/lesson), mounted when those modules exist: the
// glob below is resolved at build time and is simply empty while they are not there.
import type { ComponentType } from 'react';
import { EditForm } from './EditForm';
import { History } from './History';
import { EditNotice } from './Notice';
import { Results } from './Results';

const extensions = import.meta.glob<Record<string, unknown>>(['../weights/index.tsx', '../lesson/index.tsx'], { eager: true });
const WeightsPanel = extensions['../weights/index.tsx']?.WeightsPanel as ComponentType | undefined;
const Lesson = extensions['../lesson/index.tsx']?.Lesson as ComponentType | undefined;

export function Playground() {
  return (
    <div className="playground">
      <EditNotice />
      <div className="layout edit-layout">
        <div className="column">
          <EditForm />
          <History />
        </div>
        <div className="column">
          <Results />
          {WeightsPanel && <WeightsPanel />}
          {Lesson && <Lesson />}
        </div>
      </div>
    </div>
  );
}

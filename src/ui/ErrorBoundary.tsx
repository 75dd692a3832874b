// Last line of defence against a blank page: a rendering bug shows its message and a reload button.
import { Component, type ReactNode } from 'react';

export class ErrorBoundary extends Component<{ children: ReactNode }, { error: Error | null }> {
  state = { error: null as Error | null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  render() {
    if (!this.state.error) return this.props.children;
    return (
      <main className="layout">
        <section className="panel error" role="alert" data-testid="app-crash">
          <h2>Something went wrong on this page</h2>
          <p>{this.state.error.message}</p>
          <button type="button" onClick={() => location.reload()}>Reload</button>
        </section>
      </main>
    );
  }
}

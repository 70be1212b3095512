/**
 * The reply's progress: tokens out of the budget, and the rate.
 */
import type { Progress } from "../src/index.js";

export function ProgressBar({ progress }: { progress: Progress | undefined }) {
  const percent = Math.round((progress?.fraction ?? 0) * 100);
  const label =
    progress === undefined
      ? ""
      : `${progress.completionTokens} / ${progress.maxTokens || "?"} tokens · ${progress.tokensPerSecond.toFixed(1)} tok/s`;
  return (
    <div className="progress">
      <div className="bar" data-testid="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent}>
        <div className="fill" style={{ width: `${percent}%` }} />
      </div>
      <span className="progress-label" data-testid="progress-text">
        {label}
      </span>
    </div>
  );
}

// An application using the real @sentry/node SDK, pointed at Mesher by its DSN only.
// Usage: node app.mjs DSN
import * as Sentry from "@sentry/node";

function divide(a, b) {
  if (b === 0) throw new RangeError("division by zero");
  return a / b;
}

Sentry.init({ dsn: process.argv[2], environment: "staging", release: "shop@1.0.0" });
// Two captures from one site: one issue with two events.
for (let i = 0; i < 2; i++) {
  try {
    divide(1, 0);
  } catch (e) {
    Sentry.captureException(e);
  }
}
Sentry.captureMessage("disk almost full", "warning");
if (!(await Sentry.flush(10000))) {
  console.error("flush timed out");
  process.exit(1);
}

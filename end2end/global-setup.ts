import type { FullConfig } from "@playwright/test";

/** How long to wait for the server: `cargo leptos end-to-end` may still be starting it. */
const TIMEOUT_MS = 180_000;
const INTERVAL_MS = 250;

/**
 * Polls `${baseURL}/healthz` until it answers 200, so that no test runs
 * against a server that is not listening yet.
 */
export default async function globalSetup(config: FullConfig): Promise<void> {
  const baseURL =
    config.projects[0]?.use.baseURL ?? process.env.BASE_URL ?? "http://127.0.0.1:3100";
  const url = new URL("/healthz", baseURL).toString();
  const deadline = Date.now() + TIMEOUT_MS;
  let last = "no answer yet";

  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      // Connection refused while the server starts: keep polling.
      last = err instanceof Error ? `${err.message}${causeOf(err)}` : String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS));
  }

  throw new Error(
    `Comet Chat server did not become healthy: GET ${url} did not answer 200 ` +
      `within ${TIMEOUT_MS / 1000} s (last result: ${last}). ` +
      `Is it running? Set BASE_URL if it listens elsewhere.`,
  );
}

function causeOf(err: Error): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? ` (${cause.message})` : "";
}

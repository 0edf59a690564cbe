/**
 * Server nodes the browser tests start themselves: the same build (release
 * or debug) `cargo leptos end-to-end` serves, on an address of the test's
 * choosing.
 * Used by global-setup.ts (the second node of the Redis run) and by
 * restart.spec.ts (a node it kills and starts again).
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.join(__dirname, "..");
const INTERVAL_MS = 100;

/**
 * Polls `${baseURL}/healthz` until it answers 200, or throws after
 * `timeoutMs` saying what it last saw.
 */
export async function waitHealthy(baseURL: string, timeoutMs: number): Promise<void> {
  const url = new URL("/healthz", baseURL).toString();
  const deadline = Date.now() + timeoutMs;
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
      `within ${timeoutMs / 1000} s (last result: ${last}). ` +
      `Is it running? Set BASE_URL if it listens elsewhere.`,
  );
}

function causeOf(err: Error): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? ` (${cause.message})` : "";
}

/**
 * The server binary of the build now in target/site: with `hash-files`
 * each build writes hash.txt beside its binary, naming its wasm; the one
 * whose wasm is in target/site/pkg is the build just made (the other
 * profile's hash.txt may be left from an older build).
 */
export function serverBinary(): string {
  for (const profile of ["release", "debug"]) {
    const dir = path.join(ROOT, "target", profile);
    let hashes: string;
    try {
      hashes = fs.readFileSync(path.join(dir, "hash.txt"), "utf8");
    } catch {
      continue; // no build of this profile
    }
    const wasm = /^wasm:\s*(\S+)/m.exec(hashes)?.[1];
    if (wasm && fs.existsSync(path.join(ROOT, "target", "site", "pkg", `comet-chat.${wasm}.wasm`))) {
      return path.join(dir, "comet-chat");
    }
  }
  throw new Error("no server build matches target/site/pkg: run `cargo leptos end-to-end` (or `build`) first");
}

/** Whether the build in target/site is a release build. */
export function isReleaseBuild(): boolean {
  try {
    return serverBinary().includes(`${path.sep}release${path.sep}`);
  } catch {
    return false;
  }
}

/**
 * Starts a node on `addr` (with this process's environment, so the same
 * COMET_* settings and Redis) and waits until it is healthy. Its log goes to
 * this process's stderr; its stdout too unless `quiet`. Killed if it is not
 * healthy within `timeoutMs`.
 */
export async function startNode(
  addr: string,
  { quiet = false, timeoutMs = 30_000 } = {},
): Promise<ChildProcess> {
  const node = spawn(serverBinary(), [], {
    cwd: ROOT,
    env: {
      ...process.env,
      LEPTOS_SITE_ADDR: addr,
      LEPTOS_OUTPUT_NAME: "comet-chat",
      LEPTOS_SITE_ROOT: "target/site",
      LEPTOS_SITE_PKG_DIR: "pkg",
      LEPTOS_HASH_FILES: "true",
    },
    stdio: ["ignore", quiet ? "ignore" : "inherit", "inherit"],
  });
  try {
    await waitHealthy(`http://${addr}`, timeoutMs);
  } catch (err) {
    node.kill("SIGKILL");
    throw err;
  }
  return node;
}

/** Stops a node with `signal` and waits until it has exited. */
export async function stopNode(node: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (node.exitCode !== null || node.signalCode !== null) return;
  const exited = new Promise((resolve) => node.once("exit", resolve));
  node.kill(signal);
  await exited;
}

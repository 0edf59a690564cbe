import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";
import {
  collectConsoleErrors,
  expect,
  messageWithText,
  messagesFrom,
  notice,
  sendWithEnter,
  test,
  token,
  uniqueName,
} from "./helpers";

/**
 * The terminal client (examples/tail.rs, on comet's native client) and a
 * browser in one chat: what is typed in the browser is printed by tail,
 * and a line typed into tail shows in the browser.
 */

const ROOT = path.join(__dirname, "..", "..");
const TAIL = path.join(ROOT, "target", "debug", "examples", "tail");

/**
 * Brings the example's binary up to date: a no-op when `cargo test` built
 * it (scripts/test does, before the browser runs), a full build on a
 * machine that never did. cargo-leptos's variables (LEPTOS_*, RUSTFLAGS)
 * are left out, so the build is the one `cargo test` makes, not a
 * rebuild of everything.
 */
function buildTail(): void {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith("LEPTOS_") && !key.startsWith("CARGO_") && key !== "RUSTFLAGS"),
  );
  const built = spawnSync("cargo", ["build", "--example", "tail", "--features", "ssr,client"], {
    cwd: ROOT,
    env,
    encoding: "utf8",
  });
  if (built.status !== 0 || !fs.existsSync(TAIL)) throw new Error(`cargo build --example tail failed:\n${built.stderr}`);
}

/** tail's output as lines, read as they come. */
class Tail {
  readonly process: ChildProcessWithoutNullStreams;
  private readonly out: string[] = [];
  private readonly err: string[] = [];

  constructor(base: string, name: string) {
    this.process = spawn(TAIL, [base, name], { stdio: "pipe" });
    readline.createInterface({ input: this.process.stdout }).on("line", (line) => this.out.push(line));
    readline.createInterface({ input: this.process.stderr }).on("line", (line) => this.err.push(line));
  }

  /** Waits until tail says it has read the history and is polling. */
  async connected(): Promise<void> {
    await expect.poll(() => this.err.some((line) => line.startsWith("* connected as")), {
      message: `tail connects (stderr: ${this.err.join(" | ")})`,
    }).toBe(true);
  }

  /** The chat lines tail printed so far. */
  printed(): string[] {
    return [...this.out];
  }

  type(line: string): void {
    this.process.stdin.write(`${line}\n`);
  }

  /** Ends its input (it logs out and exits), and waits for it to exit. */
  async close(): Promise<number | null> {
    if (this.process.exitCode !== null) return this.process.exitCode;
    const exited = new Promise<number | null>((resolve) => this.process.once("exit", (code) => resolve(code)));
    this.process.stdin.end();
    return exited;
  }
}

test("tail, the terminal client, and a browser chat both ways", async ({ openUser, baseURL }) => {
  // A cold build of the example takes minutes; once built, a second.
  // Every wait below has its own shorter bound (expect's 10 s).
  test.setTimeout(20 * 60_000);
  buildTail();

  const ada = await openUser("ada");
  const errors = collectConsoleErrors(ada.page);
  const terminalName = uniqueName("term");
  const tail = new Tail(baseURL!, terminalName);
  try {
    await tail.connected();
    // The browser sees the terminal user arrive.
    await expect(notice(ada.page, "join", terminalName)).toHaveCount(1);

    const tag = token();
    const fromBrowser = `typed in the browser ${tag}`;
    await sendWithEnter(ada.page, fromBrowser);
    await expect.poll(() => tail.printed()).toContain(`${ada.name}: ${fromBrowser}`);

    const fromTerminal = `typed in the terminal ${tag}`;
    tail.type(fromTerminal);
    await expect(messagesFrom(ada.page, terminalName).filter({ hasText: fromTerminal })).toHaveCount(1);
    await expect(messageWithText(ada.page, fromTerminal)).toHaveCount(1);

    // The end of its input logs it out: the browser sees it leave.
    expect(await tail.close()).toBe(0);
    await expect(notice(ada.page, "leave", terminalName)).toHaveCount(1);
    // Each message printed once.
    expect(tail.printed().filter((line) => line.includes(fromBrowser))).toHaveLength(1);
  } finally {
    if (tail.process.exitCode === null) tail.process.kill("SIGTERM");
  }
  expect(errors).toEqual([]);
});

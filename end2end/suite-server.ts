/**
 * Which server the browser tests talk to, and which browser they drive:
 * decided once, when playwright.config.ts loads.
 *
 * - `BASE_URL` set (scripts/test sets it): that server, started by whoever
 *   set it with the settings in server.env.
 * - Unset (`npx playwright test`, or a plain `cargo leptos end-to-end`,
 *   whose server runs with the defaults): the suite starts the build in
 *   target/site itself, on site-addr's port + 100 (site-addr from the
 *   workspace's Cargo.toml, 127.0.0.1:3000), with server.env's settings,
 *   and stops it when the run ends (global-setup.ts).
 * - The browser: `CHROMIUM` names it; else the first of Debian's, Ubuntu's
 *   and Chrome's usual paths that exists; else Playwright's own.
 */
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.join(__dirname, "..");

/** server.env as a map (KEY=VALUE lines; `#` comments and blanks skipped). */
export function serverSettings(): Record<string, string> {
  const text = fs.readFileSync(path.join(__dirname, "server.env"), "utf8");
  const settings: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const eq = trimmed.indexOf("=");
    if (eq <= 0) throw new Error(`end2end/server.env: not KEY=VALUE: ${trimmed}`);
    settings[trimmed.slice(0, eq)] = trimmed.slice(eq + 1);
  }
  return settings;
}

/** `site-addr` of `[package.metadata.leptos]` in the root Cargo.toml. */
function siteAddr(): string {
  const cargo = fs.readFileSync(path.join(ROOT, "Cargo.toml"), "utf8");
  const addr = /^site-addr\s*=\s*"([^"]+)"/m.exec(cargo)?.[1];
  if (!addr) throw new Error("no site-addr in Cargo.toml's [package.metadata.leptos]");
  return addr;
}

/** Where the suite's own server listens when BASE_URL is not given. */
function ownAddr(): string {
  const addr = siteAddr();
  const colon = addr.lastIndexOf(":");
  return `${addr.slice(0, colon)}:${Number(addr.slice(colon + 1)) + 100}`;
}

/** The server under test, and whether the suite starts it. */
export function suiteServer(): { baseURL: string; own: boolean; ownAddr: string } {
  const given = process.env.BASE_URL;
  const addr = ownAddr();
  return given ? { baseURL: given, own: false, ownAddr: addr } : { baseURL: `http://${addr}`, own: true, ownAddr: addr };
}

/** The Chromium to drive, or undefined for Playwright's own. */
export function chromium(): string | undefined {
  const named = process.env.CHROMIUM;
  if (named) {
    if (!fs.existsSync(named)) throw new Error(`CHROMIUM=${named}: no such file`);
    return named;
  }
  return ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find((p) => fs.existsSync(p));
}

/**
 * Whether the build in target/site was precompressed (`--precompress`:
 * brotli files beside the others): only then is a static file answered
 * per `Accept-Encoding`, with `Vary`.
 */
export function precompressed(): boolean {
  try {
    return fs.readdirSync(path.join(ROOT, "target", "site", "pkg")).some((f) => f.endsWith(".br"));
  } catch {
    return false;
  }
}

// What every browser script here shares: its arguments, Debian's Chromium with the flags of
// ARCHITECTURE.md, signing in through the web app, and the one JSON line of results it prints.
import { chromium } from "playwright-core";

/** `node <script>.mjs <base url> <config json>` -> { base, cfg } */
export function scriptArgs() {
  const [base, configJson] = process.argv.slice(2);
  return { base, cfg: JSON.parse(configJson) };
}

export function launch() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Fill in the sign-in form; `code` answers the two-factor step when given. */
export async function fillSignIn(page, email, password, code) {
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  if (code !== undefined) await page.getByLabel("Two-factor code").fill(code);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** Sign in and wait until the app shows who is signed in. */
export async function signIn(page, base, email, password) {
  await page.goto(base + "/ui/");
  await fillSignIn(page, email, password);
  await page.getByText(email + " (").waitFor({ timeout: 20000 });
}

/** Run `body`, record ok/error in `out`, close the browser, print `out` as one JSON line. */
export async function runScenario(browser, out, body) {
  try {
    await body();
    out.ok = true;
  } catch (err) {
    out.ok = false;
    out.error = String((err && err.stack) || err);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
}
